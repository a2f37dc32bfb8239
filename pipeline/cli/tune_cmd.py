"""`aiotrade tune`: list the Optuna studies of a storage, or join one as an extra worker process.

`aiotrade train` creates the studies (one per regime and two baselines) in `tuning.storage` and runs
trials itself. More processes, on this machine or others, add trials to the same study:

    aiotrade tune --storage postgresql://bot:PW@db-host:5432/optuna --list
    aiotrade tune --storage postgresql://bot:PW@db-host:5432/optuna --study NAME --worker

Each worker rebuilds the study's objective from what the creator stored with it and from its own
candle store (same candles, checked by content hash) and stops when the study's budget is reached.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.app import ConfigOpt, app, load
from pipeline.cli.console import make_console

_out = make_console()


@app.command()
def tune(
    config: ConfigOpt = None,
    storage: Annotated[str | None, typer.Option(
        help="Optuna storage: postgresql://USER:PW@HOST:PORT/DB, sqlite:///PATH or journal:PATH "
             "(default: tuning.storage, else the local journal under mlruns/optuna/).")] = None,
    study: Annotated[str | None, typer.Option(help="Study to join (see --list).")] = None,
    worker: Annotated[bool, typer.Option("--worker", help="Join --study as an extra worker process.")] = False,
    list_: Annotated[bool, typer.Option("--list", help="List the studies in the storage.")] = False,
    store: Annotated[Path | None, typer.Option(help="Candle store with the study's candles (default: the "
                                                     "study's data.store_dir).")] = None,
    n_trials: Annotated[int | None, typer.Option(help="Run until the study holds this many trials in all "
                                                      "(default: its own budget).", min=1)] = None,
) -> None:
    """Join a tuning study as an extra worker (--worker), or list the studies (--list)."""
    import optuna

    from core.errors import ConfigError
    from pipeline.tune_run import join_study, list_studies
    from pipeline.tuning_storage import describe, resolve_storage

    cfg = load(config)
    url = storage if storage is not None else cfg.tuning.storage
    where = describe(resolve_storage(url))
    if list_:
        _print_studies(list_studies(url), where)
        return
    if not worker or not study:
        raise ConfigError("aiotrade tune needs --list, or --worker with --study NAME",
                          "studies are created by `aiotrade train`; list them with `aiotrade tune --list`")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with _out.status(f"joining {study} in {where}") as status:

        def progress(key: str, done: int, total: int) -> None:
            status.update(f"worker on {study}: {done}/{total} trials")

        outcome = join_study(url, study, str(store) if store else None, progress, n_trials)
    best = "-" if outcome.best_value is None else f"{outcome.best_value:.3f} (trial {outcome.best_trial})"
    _out.print(f"{study}: budget reached; {outcome.n_complete} complete, {outcome.n_pruned} pruned, "
               f"{outcome.own_trials} run by this worker; best {best}")


def _print_studies(rows: list[dict], where: str) -> None:
    from rich.table import Table

    t = Table(title=f"Optuna studies in {where}")
    for col in ("study", "trials", "budget", "complete", "best", "joinable"):
        t.add_column(col, justify="left" if col == "study" else "right")
    for r in rows:
        t.add_row(r["study"], str(r["trials"]), str(r["target"] or "-"), str(r["complete"]),
                  "-" if r["best"] is None else f"{r['best']:.3f}", "yes" if r["joinable"] else "no")
    _out.print(t if rows else f"no studies in {where}")
