"""`aiotrade init` and `aiotrade config check`."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.app import ConfigOpt, app, load
from pipeline.cli.console import make_console

config_app = typer.Typer(help="Inspect and validate the configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")
_out = make_console()


def starter_text() -> str:
    return resources.files("core").joinpath("starter_config.toml").read_text(encoding="utf-8")


@app.command()
def init(
    path: Annotated[Path, typer.Argument(help="Where to write the starter config.")] = Path("aiotrade.toml"),
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented starter config file (every key with its default)."""
    from core.errors import ConfigError

    if path.exists() and not force:
        raise ConfigError(f"{path} already exists", "pass --force to overwrite it, or choose another path")
    path.write_text(starter_text(), encoding="utf-8")
    _out.print(f"wrote {path}; check it with: aiotrade config check -c {path}")


@config_app.command("check")
def check(config: ConfigOpt = None) -> None:
    """Validate the config and print it resolved, with secrets masked."""
    import os

    from core.secrets import load_credentials

    cfg = load(config)
    resolved = cfg.model_dump(mode="json")
    creds = load_credentials(cfg.exchange.name, cfg.exchange.secrets_file, required=False)
    resolved["credentials"] = creds.masked() if creds else "(none: paper trading only)"
    if os.environ.get("MLFLOW_TRACKING_URI"):
        resolved["mlflow"]["tracking_uri"] = os.environ["MLFLOW_TRACKING_URI"] + "  (from MLFLOW_TRACKING_URI)"
    _out.print(f"[green]config OK[/] ({config or 'embedded defaults'}; hash {cfg.config_hash()})")
    _out.print_json(data=resolved)
