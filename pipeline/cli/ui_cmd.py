"""`aiotrade ui`: browse runs, metrics, plots and the registered policy in the MLflow UI."""

from __future__ import annotations

from typing import Annotated

import typer

from pipeline.cli.app import ConfigOpt, app, load
from pipeline.cli.console import make_console

_out = make_console()


@app.command()
def ui(
    config: ConfigOpt = None,
    port: Annotated[int, typer.Option(help="Loopback port to serve on.", min=1, max=65535)] = 5000,
    timeout_s: Annotated[float, typer.Option(help="Seconds to wait for the server to answer.")] = 120.0,
) -> None:
    """Start the MLflow UI on 127.0.0.1 against the configured store (lean: one worker, no job runner)."""
    from core.errors import AIOTradeError
    from pipeline.ui import LOOPBACK, start_ui, stop_ui, tracking_uri, wait_ready

    cfg = load(config)
    uri = tracking_uri(cfg.mlflow.tracking_uri)
    proc = start_ui(uri, LOOPBACK, port)
    url = f"http://{LOOPBACK}:{port}"
    try:
        _out.print(f"starting the MLflow UI for {uri} ...")
        if not wait_ready(proc, url, timeout_s):
            raise AIOTradeError(
                f"the MLflow UI did not answer on {url} within {timeout_s:g} s (exit code {proc.poll()})",
                "run `python -m mlflow ui` by hand to see its log, or raise --timeout-s",
            )
        _out.print(f"[green]MLflow UI:[/] {url}   (Ctrl-C stops it)")
        proc.wait()
    except KeyboardInterrupt:
        _out.print("stopping the MLflow UI")
    finally:
        stop_ui(proc)
