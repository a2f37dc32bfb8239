"""`aiotrade train`: features, regime labels, walk-forward CV with baselines, final model, MLflow."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.app import ConfigOpt, app, load
from pipeline.cli.console import make_console
from pipeline.cli.logs import printed_here

_out = make_console()


@app.command()
def train(
    config: ConfigOpt = None,
    pairs: Annotated[str | None, typer.Option(help="Comma-separated pairs, overriding market.pairs (e.g. BTC/USDT,ETH/USDT).")] = None,
    timeframe: Annotated[str | None, typer.Option(help="Base timeframe, overriding market.base_timeframe.")] = None,
    store: Annotated[Path | None, typer.Option(help="Candle store folder, overriding data.store_dir.")] = None,
    folds: Annotated[int | None, typer.Option(help="Walk-forward folds, overriding model.cv_folds.")] = None,
    register: Annotated[bool, typer.Option("--register/--no-register", help="Register the model and move the alias.")] = True,
) -> None:
    """Train the regime model and tune the policy on stored candles: cross-validate beside baselines, fit,
    tune each regime's grid/DCA with Optuna, print the out-of-sample table, register the policy bundle."""
    from core.config import config_from_dict
    from core.store import CandleStore
    from pipeline.policy import full_steps
    from pipeline.train import TrainContext, run_train

    cfg = load(config)
    raw = cfg.model_dump(mode="json")
    if pairs:
        raw["market"]["pairs"] = [p.strip() for p in pairs.split(",") if p.strip()]
    if timeframe:
        raw["market"]["base_timeframe"] = timeframe
    if store:
        raw["data"]["store_dir"] = str(store)
    if folds:
        raw["model"]["cv_folds"] = folds
    cfg = config_from_dict(raw, source="command line") if (pairs or timeframe or store or folds) else cfg
    ctx = TrainContext(config=cfg, store=CandleStore(cfg.data.store_dir), console=_out, register=register)
    with printed_here("pipeline.tune_run"):  # a study's fallback is printed under the studies table
        run_train(ctx, full_steps())  # the regime model's steps, then tuning, evaluation and the policy bundle
