"""`aiotrade quickstart`: the main job on the embedded defaults (steps in pipeline/quickstart.py)."""

from __future__ import annotations

from rich.console import Console

from pipeline.cli.app import ConfigOpt, app, load


@app.command()
def quickstart(config: ConfigOpt = None) -> None:
    """Run the main job on the defaults: import the bundled sample candles and summarise them."""
    from pipeline.quickstart import run_quickstart

    console = Console()
    run_quickstart(load(config), console)
    console.print("[green]quickstart done[/]")
