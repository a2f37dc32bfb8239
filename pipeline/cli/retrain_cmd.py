"""`aiotrade retrain`: scheduled (cron, via APScheduler) or one-shot (for cron/systemd/Kubernetes) retraining."""

from __future__ import annotations

from typing import Annotated

import typer

from pipeline.cli.app import ConfigOpt, app, load
from pipeline.cli.console import make_console
from pipeline.cli.logs import printed_here

_out = make_console()


@app.command()
def retrain(
    config: ConfigOpt = None,
    once: Annotated[bool, typer.Option("--once", help="Retrain once and exit (for cron, systemd timers, "
                                                      "Kubernetes CronJobs).")] = False,
    schedule: Annotated[str | None, typer.Option(help="Cron expression in UTC, e.g. \"0 3 * * *\": stay up and "
                                                      "retrain at every tick.")] = None,
    download: Annotated[bool, typer.Option("--download/--no-download", help="Fetch new candles first "
                                                                           "(skipped with a reason when the "
                                                                           "exchange does not answer).")] = True,
) -> None:
    """Download new candles, train a challenger, promote it over the champion only if it is not worse."""
    import logging

    import optuna

    from core.errors import ConfigError
    from pipeline.retrain import parse_schedule, retrain_once, run_schedule

    if once == (schedule is not None):
        raise ConfigError("aiotrade retrain needs exactly one of --once or --schedule CRON",
                          "e.g. `aiotrade retrain --once` or `aiotrade retrain --schedule \"0 3 * * *\"`")
    if schedule is not None:
        parse_schedule(schedule)  # a bad expression fails before anything loads
    cfg = load(config)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Printed to _out by the steps themselves: pipeline.retrain's notes and "retrain failed", a study's
    # fallback (pipeline.tune_run) under the studies table.
    with printed_here("pipeline.retrain", up_to=logging.ERROR), printed_here("pipeline.tune_run"):
        if schedule is not None:
            try:
                run_schedule(cfg, schedule, _out, download)
            except (KeyboardInterrupt, SystemExit):
                _out.print("retrain scheduler stopped")
            return
        o = retrain_once(cfg, _out, download=download)
    verdict = "[green]promoted[/]" if o.promoted else "[yellow]kept the champion[/]"
    _out.print(f"retrain: {verdict}: {o.reason}")
