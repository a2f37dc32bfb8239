"""`aiotrade train`, part 2: per-regime tuning -> out-of-sample evaluation -> the registered policy bundle.

These steps run after the regime model's steps in `pipeline.train` (inside the same MLflow run):

1. `tune_regimes`: the out-of-fold regime predictions of the walk-forward CV (`ctx.cv.oof`, never
   in-sample) become, per pair, a regime and probability per bar; one Optuna study per regime and
   the two static baselines are tuned on the tuning windows (`pipeline.tune_run`), each study a
   child run with its plots.
2. `evaluate_out_of_sample`: adaptive policy vs static grid vs static DCA vs buy-and-hold on the
   held-back window, printed and logged to the parent run.
3. `register_policy`: the bundle (final classifier + tuned table + spec + pairs + evaluation) is
   logged and registered as a new version of `mlflow.model_name` WITHOUT an alias; the alias moves
   last, only when `PolicyState.promote` (train: yes; retrain decides with its gate).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import mlflow
import numpy as np
import pandas as pd

from core.config import Config
from core.errors import DataError
from core.market_rules import MarketRules, default_rules
from models.evaluate import PROBA_COLUMNS
from models.labels import REGIMES
from models.policy_bundle import PolicyBundle, log_policy_bundle, set_alias
from pipeline.tune_eval import EvalRow, out_of_sample_table
from pipeline.tune_objective import PairSeries, TuningData, make_windows
from pipeline.tune_report import (
    log_oos,
    log_study_runs,
    metric_key,
    oos_table,
    studies_table,
    table_text,
)
from pipeline.tune_run import TuningResult, tune_policy
from pipeline.tuning_storage import describe as describe_storage
from pipeline.tuning_storage import open_storage, resolve_storage
from strategies.risk import RunSettings
from strategies.simulator import Bars

if TYPE_CHECKING:
    from pipeline.train import TrainContext


@dataclass
class PolicyState:
    """What the policy steps add to a TrainContext (`ctx.policy`)."""

    promote: bool = True  # move the alias to the new bundle (retrain sets False and gates it itself)
    register: bool | None = None  # register the bundle; None follows ctx.register (--register/--no-register)
    storage: str | None = None  # Optuna storage override (CLI --storage)
    data: TuningData | None = None
    result: TuningResult | None = None
    table: list[EvalRow] | None = None
    bundle: PolicyBundle | None = None
    version: str | None = None  # the registered bundle version
    hysteresis: dict[str, Any] | None = None  # the threshold against the out-of-fold probabilities


def state(ctx: TrainContext) -> PolicyState:
    if getattr(ctx, "policy", None) is None:
        ctx.policy = PolicyState()
    return ctx.policy


def market_rules(cfg: Config, pair: str, price_hint: float) -> MarketRules:
    ex = cfg.exchange
    return default_rules(ex.name, pair, price_hint, ex.maker_fee_pct, ex.taker_fee_pct)


def pair_series(pair: str, candles: pd.DataFrame, oof: pd.DataFrame) -> PairSeries:
    """The pair's candles over its out-of-fold span, with the predicted regime (REGIMES index) per bar."""
    mine = oof[oof["pair"] == pair].sort_values("ts")
    if mine.empty:
        raise DataError(f"{pair}: the cross-validation produced no out-of-fold predictions",
                        "give the pair more history (each walk-forward fold needs test bars)")
    ts = candles["ts"].to_numpy()
    a, b = np.searchsorted(ts, int(mine["ts"].iloc[0])), np.searchsorted(ts, int(mine["ts"].iloc[-1]), side="right")
    span = candles.iloc[a:b].reset_index(drop=True)
    proba = mine[PROBA_COLUMNS].to_numpy(dtype=np.float64)
    pos = np.searchsorted(span["ts"].to_numpy(), mine["ts"].to_numpy())
    regimes = np.full(len(span), -1, dtype=np.int64)
    probs = np.zeros(len(span))
    regimes[pos] = np.argmax(proba, axis=1)
    # float32 and back: the exact values a `--worker` process rebuilds from the study's stored copy.
    probs[pos] = proba.max(axis=1).astype(np.float32).astype(np.float64)
    return PairSeries(pair, Bars.from_frame(span), regimes, probs)


def tuning_data(cfg: Config, candles: dict[str, pd.DataFrame], oof: pd.DataFrame) -> TuningData:
    pairs = [pair_series(p, candles[p], oof) for p in cfg.market.pairs]
    rules = {p.pair: market_rules(cfg, p.pair, float(p.bars.close[0])) for p in pairs}
    folds, holdout = make_windows(pairs, cfg.tuning.folds, cfg.tuning.holdout_pct)
    return TuningData(pairs, rules, RunSettings.from_config(cfg, len(pairs)), list(REGIMES), folds, holdout)


def context_hash(cfg: Config, fingerprint: dict[str, Any], data: TuningData) -> str:
    """What every score depends on: settings, candles, out-of-fold predictions and the windows."""
    h = hashlib.sha256()
    h.update(cfg.config_hash().encode())
    h.update(str(fingerprint.get("content_sha256", "")).encode())
    for p in data.pairs:
        h.update(p.pair.encode())
        h.update(p.regimes.tobytes())
        h.update(p.probs.tobytes())
    h.update(json.dumps([[w.start_ms, w.stop_ms] for w in [*data.folds, data.holdout]]).encode())
    return h.hexdigest()[:10]


# ------------------------------------------------------------------------------------------ train steps


def tune_regimes(ctx: TrainContext) -> None:
    """One Optuna study per regime (out-of-fold regimes, walk-forward windows) and the static baselines."""
    from pipeline.tune_context import context_payload

    cfg, st = ctx.config, state(ctx)
    st.data = tuning_data(cfg, ctx.candles, ctx.cv.oof)
    st.hysteresis = hysteresis_report(cfg, st.data, ctx.cv.oof)
    ctx.console.print(hysteresis_line(st.hysteresis))
    mlflow.log_dict(st.hysteresis, "hysteresis.json")
    prefix = f"{cfg.mlflow.model_name}-{context_hash(cfg, ctx.fingerprint, st.data)}"
    storage = st.storage if st.storage is not None else cfg.tuning.storage
    payload = context_payload(cfg, ctx.fingerprint, st.data)
    ctx.console.print(f"  studies {prefix}.* in {describe_storage(resolve_storage(storage))}; "
                      f"{cfg.tuning.n_trials} trials each; windows: "
                      + ", ".join(f"{w.name} {_day(w.start_ms)}..{_day(w.stop_ms)}" for w in [*st.data.folds, st.data.holdout]))
    with ctx.console.status("tuning") as status:

        def progress(key: str, done: int, total: int) -> None:
            status.update(f"tuning {key}: {done}/{total} trials")

        st.result = tune_policy(st.data, cfg, prefix, storage, payload, progress)
    ctx.console.print(studies_table(st.result, st.data.regime_names))
    for key, why in st.result.fallbacks.items():
        ctx.console.print(f"  [yellow]{key}: {why}[/]")
    mlflow.set_tags({"optuna_storage": describe_storage(st.result.storage), "optuna_prefix": prefix})
    log_study_runs(st.result, open_storage(st.result.storage))


def hysteresis_report(cfg: Config, data: TuningData, oof: pd.DataFrame) -> dict[str, Any]:
    """How the configured hysteresis treats the model's out-of-fold predictions: the spread of the top
    class's probability, and per regime the share of bars it is predicted against the share it is
    armed (what the tuner, the backtest and the live runner follow)."""
    proba = oof[PROBA_COLUMNS].to_numpy(dtype=np.float64)
    top = proba.max(axis=1)
    predicted = np.bincount(proba.argmax(axis=1), minlength=len(REGIMES)) / max(1, len(proba))
    armed = np.zeros(len(REGIMES))
    for pair in data.pairs:
        a = data.active(pair)
        armed += np.bincount(a[a >= 0], minlength=len(REGIMES))[:len(REGIMES)]
    armed = armed / max(1.0, armed.sum())
    return {
        "min_dwell_bars": cfg.strategy.min_dwell_bars,
        "min_regime_probability": cfg.strategy.min_regime_probability,
        "top_probability_quantiles": {f"p{int(q * 100)}": float(np.quantile(top, q)) for q in (0.1, 0.25, 0.5, 0.75, 0.9)},
        "share_at_or_above_threshold": float(np.mean(top >= cfg.strategy.min_regime_probability)),
        "predicted_share": {r: float(v) for r, v in zip(REGIMES, predicted, strict=True)},
        "armed_share": {r: float(v) for r, v in zip(REGIMES, armed, strict=True)},
    }


def hysteresis_line(h: dict[str, Any]) -> str:
    q = h["top_probability_quantiles"]
    shares = ", ".join(f"{r} {100 * h['predicted_share'][r]:.0f}% -> {100 * h['armed_share'][r]:.0f}%" for r in REGIMES)
    return (f"  hysteresis: min_regime_probability {h['min_regime_probability']:g}, min_dwell_bars "
            f"{h['min_dwell_bars']}; out-of-fold top-class probability p25 {q['p25']:.2f}, median {q['p50']:.2f}, "
            f"p75 {q['p75']:.2f} ({100 * h['share_at_or_above_threshold']:.0f}% of bars reach the threshold); "
            f"bars predicted -> armed: {shares}")


def evaluate_out_of_sample(ctx: TrainContext) -> None:
    """Adaptive policy vs static grid vs static DCA vs buy-and-hold on the held-back window."""
    st = state(ctx)
    data, res = _need(st.data), _need(st.result)
    st.table = out_of_sample_table(data, res.policy, res.static_grid, res.static_dca)
    w = data.holdout
    title = (f"Out-of-sample ({_day(w.start_ms)} .. {_day(w.stop_ms)}, {len(data.pairs)} pairs "
             f"{ctx.config.market.base_timeframe}, never seen by tuning)")
    table = oos_table(st.table, title, ctx.config.tuning.metric)
    ctx.console.print(table)
    log_oos(st.table, table_text(table))


def register_policy(ctx: TrainContext) -> None:
    """The policy bundle: classifier + tuned table + spec + pairs + evaluation; registered, alias last."""
    cfg, st = ctx.config, state(ctx)
    res = _need(st.result)
    st.bundle = PolicyBundle(
        classifier=_need(ctx.model), policy=res.policy, spec=_need(ctx.spec), pairs=tuple(cfg.market.pairs),
        exchange=cfg.exchange.name, feature_timeframes=tuple(cfg.market.feature_timeframes),
        evaluation=evaluation_summary(cfg, st), fallbacks=res.fallbacks,
        meta={"config_hash": cfg.config_hash(), "data_sha256": ctx.fingerprint.get("content_sha256"),
              "train_run_id": ctx.run_id, "optuna_prefix": res.prefix},
    )
    register = ctx.register if st.register is None else st.register
    name = cfg.mlflow.model_name if register else None
    st.version = log_policy_bundle(st.bundle, name)
    if st.version is None:
        ctx.console.print("  policy bundle logged to the run, not registered (--no-register)")
        return
    mlflow.set_tag("policy_version", st.version)
    if st.promote:
        set_alias(cfg.mlflow.model_name, cfg.mlflow.alias, st.version)
        ctx.console.print(f"  registered policy {name} version {st.version}, alias @{cfg.mlflow.alias}: "
                          f"the live runner loads models:/{name}@{cfg.mlflow.alias}")
    else:
        ctx.console.print(f"  registered policy {name} version {st.version} (alias not moved)")


def evaluation_summary(cfg: Config, st: PolicyState) -> dict[str, Any]:
    data, rows = _need(st.data), _need(st.table)
    return {
        "metric": cfg.tuning.metric,
        "holdout": {"start_ms": data.holdout.start_ms, "stop_ms": data.holdout.stop_ms},
        "out_of_sample": {r.name: {k: float(v) for k, v in r.portfolio.items()} for r in rows},
        "adaptive_score": float(rows[0].portfolio[metric_key(cfg.tuning.metric)]),
        "hysteresis": st.hysteresis or {},
    }


POLICY_STEPS = [tune_regimes, evaluate_out_of_sample, register_policy]


def full_steps() -> list:
    """The whole `aiotrade train` pipeline: the regime model's steps, then these (once)."""
    from pipeline.train import STEPS

    return list(STEPS) if tune_regimes in STEPS else [*STEPS, *POLICY_STEPS]


def _day(ts_ms: int) -> str:
    return pd.Timestamp(ts_ms, unit="ms", tz="UTC").strftime("%Y-%m-%d")


def _need(value: Any) -> Any:
    if value is None:
        raise RuntimeError("a policy step ran before the step that provides its input")
    return value
