"""`aiotrade quickstart`: the main job on the embedded defaults (`make run`).

The data steps live in pipeline/quickstart.py; this command appends the rest of the product's path
on the same store: the whole `aiotrade train` pipeline (features, regime model, per-regime tuning,
policy bundle registered as champion in MLflow) and then paper trading of the champion through the
live runner against the loopback emulator (a replay of the sample's last days, so it needs no
internet). The paper step lives here, in the CLI, because only the CLI may import `live`.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from pipeline.cli.app import ConfigOpt, app, load
from pipeline.cli.console import make_console
from pipeline.cli.logs import printed_here

# The sample's last days, replayed as paper trading (the sample ends 2023-03-23 23:55 UTC).
PAPER_DAYS = 3


def train_policy(qctx: Any) -> None:
    """The whole `aiotrade train` pipeline on the store the first steps filled."""
    from pipeline.policy import full_steps
    from pipeline.train import TrainContext, run_train

    ctx = TrainContext(config=qctx.config, store=qctx.store, console=qctx.console)
    qctx.train = run_train(ctx, full_steps())


def paper_trade(qctx: Any) -> None:
    """Paper-trade the champion through the live runner on the emulator, over the sample's last days."""
    from pathlib import Path

    from live.replay_session import replay_summary, run_replay_cli

    cfg = qctx.config
    pair = cfg.market.pairs[0]
    last_ts = qctx.store.last_ts(cfg.exchange.name, pair, cfg.market.base_timeframe)
    day_ms = 86_400_000
    end_ms = (last_ts // day_ms + 1) * day_ms
    start_ms = end_ms - PAPER_DAYS * day_ms
    result = run_replay_cli(cfg, Path(cfg.data.store_dir), start_ms, end_ms, None, static=False)
    summary = replay_summary(result)
    qctx.console.print(f"  paper trading with policy {summary['policy']}: {summary['bars']} bars replayed")
    for p in summary["pairs"]:
        qctx.console.print(
            f"  {p['pair']}: {p['fills']} fills, {p['open_orders']} open orders, equity {p['equity_quote']:.2f} "
            f"({p['return_pct']:+.2f}%)"
        )
    qctx.console.print(f"  state database: {summary['state_db']} (`aiotrade status --state-db {summary['state_db']}`)")


@app.command()
def quickstart(
    config: ConfigOpt = None,
    data_only: Annotated[bool, typer.Option("--data-only", help="Only import and summarise the sample.")] = False,
) -> None:
    """Run the main job on the defaults: import the bundled sample, train and register the policy, paper-trade it."""
    from pipeline.quickstart import STEPS, run_quickstart

    console = make_console()
    steps = list(STEPS)
    if not data_only:
        steps += [("train the regime model and tune the policy (aiotrade train)", train_policy),
                  (f"paper-trade the champion policy on the last {PAPER_DAYS} days (aiotrade live --replay)", paper_trade)]
    with printed_here("pipeline.tune_run"):  # a study's fallback is printed under the studies table
        run_quickstart(load(config), console, steps)
    console.print("[green]quickstart done[/]: browse the runs with `aiotrade ui`; paper-trade live with `aiotrade live`")
