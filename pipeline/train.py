"""`aiotrade train`, part 1: candles -> features + labels -> walk-forward CV with baselines -> final model -> MLflow.

The pipeline is a list of steps, each a function of one `TrainContext`, run in order inside one
MLflow run (`run_train`). Later work (per-regime tuning, the policy bundle) appends steps after
`fit_final_model`: they find the pooled dataset in `ctx.dataset`, the out-of-fold regime
predictions per bar and pair in `ctx.cv.oof` (score tuning on those only), the fitted model in
`ctx.model` and the open MLflow run (`ctx.run_id`) to log child runs under.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from rich import box
from rich.console import Console
from rich.table import Table

from core.candles import fmt_ts
from core.config import Config
from core.errors import ConfigError, DataError
from core.store import CandleStore
from core.timeframes import timeframe_ms
from features import FeatureSpec, make_spec
from models import plots, registry
from models.classifier import RegimeClassifier
from models.dataset import Dataset, build_dataset, data_fingerprint
from models.evaluate import CVResult, cross_validate
from models.labels import LabelRule, class_balance
from models.split import WalkForwardSplit


@dataclass
class TrainContext:
    config: Config
    store: CandleStore
    console: Console
    register: bool = True
    candles: dict[str, pd.DataFrame] = field(default_factory=dict)
    fingerprint: dict[str, Any] = field(default_factory=dict)
    spec: FeatureSpec | None = None
    rule: LabelRule | None = None
    dataset: Dataset | None = None
    cv: CVResult | None = None
    model: RegimeClassifier | None = None
    registered: registry.RegisteredModel | None = None
    run_id: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    final_fit: Future | None = None  # the final model, fitted beside the CV folds (fit_final_model waits)

    @property
    def embargo_bars(self) -> int:
        m = self.config.model
        return m.horizon_bars if m.embargo_bars is None else m.embargo_bars

    @property
    def embargo_ms(self) -> int:
        return self.embargo_bars * timeframe_ms(self.config.market.base_timeframe)

    @property
    def registered_name(self) -> str:
        """The regime classifier's registry name; the policy bundle (tuning) owns mlflow.model_name."""
        return f"{self.config.mlflow.model_name}-regime"


Step = Callable[[TrainContext], None]


def load_candles(ctx: TrainContext) -> None:
    """Base-timeframe candles of every configured pair from the store; gaps are reported, not filled."""
    market, exchange = ctx.config.market, ctx.config.exchange.name
    tf = market.base_timeframe
    for pair in market.pairs:
        if not ctx.store.exists(exchange, pair, tf):
            raise _missing_dataset(ctx.store, exchange, pair, tf)
        df, report = ctx.store.load_with_report(exchange, pair, tf)
        ctx.candles[pair] = df
        gaps = f"[yellow]gaps: {report.gap_summary()}; features restart after each gap[/]" if report.gaps else "no gaps"
        ctx.console.print(f"  {pair} {tf}: {report.rows} candles, {fmt_ts(report.first_ts)} .. {fmt_ts(report.last_ts)}, {gaps}")
    ctx.fingerprint = data_fingerprint(exchange, tf, ctx.candles)


def build_training_set(ctx: TrainContext) -> None:
    """Features (the shared builder) and regime labels per pair, pooled and time-sorted."""
    m = ctx.config.model
    if ctx.embargo_bars < m.horizon_bars:
        raise ConfigError(
            f"model.embargo_bars = {ctx.embargo_bars} is shorter than model.horizon_bars = {m.horizon_bars}",
            "set embargo_bars >= horizon_bars (or leave it out: it defaults to horizon_bars)",
        )
    ctx.spec = make_spec(ctx.config.market.base_timeframe, ctx.config.market.feature_timeframes)
    ctx.rule = LabelRule(horizon_bars=m.horizon_bars)
    ctx.dataset = build_dataset(ctx.candles, ctx.spec, ctx.rule, m.cv_folds, ctx.embargo_bars)
    ds = ctx.dataset
    ctx.console.print(
        f"  {len(ds.y)} rows x {ds.X.shape[1]} features ({len(ctx.spec.all_timeframes)} timeframes, "
        f"warm-up {ctx.spec.warmup_base_bars} bars, spec {ctx.spec.hash}); labels look {m.horizon_bars} bars ahead"
    )
    balance = class_balance(ds.y)
    ctx.console.print(_balance_table(balance))
    mlflow.log_dict(balance.reset_index().to_dict(orient="records"), "class_balance.json")
    mlflow.log_metrics({f"class_share_{r}": float(s) for r, s in balance["share"].items()})
    mlflow.log_text(ctx.spec.to_json(), "feature_spec.json")
    mlflow.log_dict(ctx.rule.to_dict(), "label_rule.json")


def cross_validate_models(ctx: TrainContext) -> None:
    """Walk-forward CV (embargo >= horizon) of LightGBM beside majority, persistence and logistic regression."""
    ds, m = _need(ctx.dataset), ctx.config.model
    splitter = WalkForwardSplit(m.cv_folds, ctx.embargo_ms)
    # The final model and the fold models are independent fits: all of them go to one pool of
    # `model.n_jobs` single-threaded workers, the final model (the largest) first.
    workers, threads = fit_workers(m.n_jobs, m.cv_folds + 1)
    pool = ThreadPoolExecutor(workers, thread_name_prefix="lightgbm")
    try:
        ctx.final_fit = pool.submit(_make_model(ctx, threads).fit, ds.X, ds.y, ts_ms=ds.ts)
        with ctx.console.status("cross-validating") as status:

            def on_step(fold: int, model: str) -> None:
                status.update(f"cross-validating: fold {fold}/{m.cv_folds}, {model}")

            ctx.cv = cross_validate(ds, splitter, lambda: _make_model(ctx, threads), on_step=on_step, executor=pool)
    finally:
        pool.shutdown(wait=False)  # queued fits still run; fit_final_model waits for its own
    cv = ctx.cv
    ctx.console.print(fold_table(cv))
    verdict = cv.verdict()
    ctx.console.print(f"[bold {'green' if 'NOT' not in verdict else 'red'}]{verdict}[/]")
    ctx.console.print(per_class_table(cv))
    for row in cv.folds.itertuples():
        for metric in ("macro_f1", "balanced_accuracy", "log_loss"):
            mlflow.log_metric(f"{row.model}_{metric}", getattr(row, metric), step=row.fold)
    for model, stats in cv.summary.iterrows():
        mlflow.log_metrics({f"cv_{model}_{k}": float(v) for k, v in stats.items() if np.isfinite(v)})
    mlflow.set_tag("verdict", verdict)
    mlflow.log_text(fold_table_text(cv) + "\n" + verdict + "\n", "cv/fold_table.txt")
    mlflow.log_table(cv.folds, "cv/folds.json")
    mlflow.log_text(cv.per_class.round(4).to_csv(), "cv/per_class.csv")
    for model, cm in cv.confusion.items():
        mlflow.log_text(cm.to_csv(), f"cv/confusion_{model}.csv")
    mlflow.log_figure(plots.confusion_figure(cv.confusion["lightgbm"], "LightGBM, out-of-fold"), "plots/confusion_lightgbm.png")
    mlflow.log_figure(plots.confusion_figure(cv.confusion["persistence"], "Persistence, out-of-fold"), "plots/confusion_persistence.png")
    _log_parquet(cv.oof, "cv/oof_predictions.parquet")


def fit_final_model(ctx: TrainContext) -> None:
    """The model served live: all rows, early stopping on the last slice (after the embargo), refit."""
    ds = _need(ctx.dataset)
    t0 = time.perf_counter()
    if ctx.final_fit is not None:  # started beside the CV folds
        ctx.model, ctx.final_fit = ctx.final_fit.result(), None
        how = f"waited {time.perf_counter() - t0:.1f} s for the fit started beside the CV"
    else:
        ctx.model = _make_model(ctx, ctx.config.model.n_jobs).fit(ds.X, ds.y, ts_ms=ds.ts)
        how = f"fitted in {time.perf_counter() - t0:.1f} s"
    ctx.console.print(f"  final model: {ctx.model.best_iteration_} boosting rounds, {how}")
    mlflow.log_metric("final_best_iteration", ctx.model.best_iteration_)
    mlflow.log_figure(plots.importance_figure(ctx.model.gain_importance_), "plots/gain_importance.png")
    mlflow.log_text(ctx.model.gain_importance_.to_csv(), "gain_importance.csv")
    oof = _need(ctx.cv).oof
    pair = ds.pair[0]
    mine = oof[oof["pair"] == pair]
    close = pd.Series(ds.close[ds.pair == pair], index=ds.ts[ds.pair == pair]).reindex(mine["ts"]).to_numpy()
    fig = plots.timeline_figure(mine["ts"].to_numpy(), close, mine["y_true"].to_numpy(), mine["pred_lightgbm"].to_numpy(), pair)
    mlflow.log_figure(fig, "plots/regime_timeline.png")


def log_model(ctx: TrainContext) -> None:
    """Log the model with its signature, example and feature spec; register it and move the alias."""
    ds, model = _need(ctx.dataset), _need(ctx.model)
    name = ctx.registered_name if ctx.register else None
    ctx.registered = registry.log_regime_model(model, _need(ctx.spec), ds.X, name, ctx.config.mlflow.alias)
    if ctx.registered:
        r = ctx.registered
        ctx.console.print(f"  registered {r.name} version {r.version}, alias @{r.alias}: load with models:/{r.name}@{r.alias}")
    else:
        ctx.console.print("  model logged to the run, not registered (--no-register)")


STEPS: list[Step] = [load_candles, build_training_set, cross_validate_models, fit_final_model, log_model]


def run_train(ctx: TrainContext, steps: list[Step] | None = None) -> TrainContext:
    """Run the steps in order inside one MLflow run, timing each; the run records config and data first."""
    cfg = ctx.config
    experiment_id = registry.use_store(cfg.mlflow.tracking_uri, cfg.mlflow.experiment)
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"train {cfg.market.base_timeframe} {'+'.join(cfg.market.pairs)}") as run:
        ctx.run_id = run.info.run_id
        mlflow.set_tags({"config_hash": cfg.config_hash(), "command": "aiotrade train"})
        mlflow.log_dict(registry.redacted(cfg.model_dump(mode="json")), "config.json")
        mlflow.log_params(_params(cfg))
        for step in steps or STEPS:
            title = (step.__doc__ or step.__name__).strip().splitlines()[0]
            ctx.console.print(f"[bold]{step.__name__}[/]: {title}")
            t0 = time.perf_counter()
            step(ctx)
            ctx.seconds[step.__name__] = time.perf_counter() - t0
            if step is load_candles:
                mlflow.log_dict(ctx.fingerprint, "data_fingerprint.json")
                mlflow.set_tag("data_sha256", ctx.fingerprint["content_sha256"][:16])
        mlflow.log_metrics({f"seconds_{k}": v for k, v in ctx.seconds.items()})
    ctx.console.print(f"MLflow run {ctx.run_id} in {registry.tracking_uri(cfg.mlflow.tracking_uri)} (experiment {cfg.mlflow.experiment})")
    return ctx


def quickstart_step(qctx: Any) -> None:
    """For `aiotrade quickstart` (pipeline/quickstart.py STEPS): train on the store it just filled.

    Takes the quickstart context (config, store, console) and keeps the TrainContext on it as `train`.
    """
    ctx = TrainContext(config=qctx.config, store=qctx.store, console=qctx.console)
    qctx.train = run_train(ctx)


def fit_workers(n_jobs: int, n_fits: int) -> tuple[int, int]:
    """(parallel fits, LightGBM threads per fit) for `n_jobs` cores: one thread per fit first.

    One thread per fit because OpenMP threads of one fit spin-wait for each other: on a 2-core box
    shared with another busy process a 2-thread fit took 10x longer than a 1-thread one."""
    workers = max(1, min(n_jobs, n_fits))
    return workers, max(1, n_jobs // workers)


def _make_model(ctx: TrainContext, n_jobs: int) -> RegimeClassifier:
    m = ctx.config.model
    return RegimeClassifier(
        n_estimators=m.n_estimators,
        learning_rate=m.learning_rate,
        num_leaves=m.num_leaves,
        max_bin=m.max_bin,
        early_stopping_rounds=m.early_stopping_rounds,
        embargo_ms=ctx.embargo_ms,
        random_state=m.random_state,
        n_jobs=n_jobs,
    )


def _params(cfg: Config) -> dict[str, Any]:
    out: dict[str, Any] = {f"model.{k}": v for k, v in cfg.model.model_dump().items()}
    out.update({
        "market.pairs": ",".join(cfg.market.pairs),
        "market.base_timeframe": cfg.market.base_timeframe,
        "market.feature_timeframes": ",".join(cfg.market.feature_timeframes),
        "exchange.name": cfg.exchange.name,
        "config_hash": cfg.config_hash(),
    })
    return out


def _missing_dataset(store: CandleStore, exchange: str, pair: str, tf: str) -> DataError:
    have = sorted({i.timeframe for i in store.datasets() if i.exchange == exchange and i.pair == pair})
    what = f"the store has {pair} only in {', '.join(have)}" if have else f"the store has no {exchange} {pair} candles at all"
    return DataError(
        f"market.base_timeframe {tf!r}: no {exchange} {pair} {tf} candles in {store.root} ({what})",
        (f"set market.base_timeframe to one of {', '.join(have)}, or " if have else "")
        + f"download them (`aiotrade download --pairs {pair} --timeframes {tf}`) or run `aiotrade quickstart` for the sample",
    )


def _need(value: Any) -> Any:
    if value is None:
        raise RuntimeError("a training step ran before the step that provides its input")
    return value


def _log_parquet(df: pd.DataFrame, path: str) -> None:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / Path(path).name
        df.to_parquet(local, index=False)
        mlflow.log_artifact(str(local), str(Path(path).parent))


# ------------------------------------------------------------------ tables (rich and plain text)

_METRICS = (("macro_f1", "macro-F1"), ("balanced_accuracy", "bal. acc."), ("log_loss", "log loss"))


def fold_table(cv: CVResult) -> Table:
    t = Table(title="Walk-forward CV (test folds; baselines on the same folds)", box=box.SIMPLE_HEAD)
    for name in ("fold", "test period", "train", "test", "model", *[h for _, h in _METRICS]):
        t.add_column(name, justify="right" if name not in ("model", "test period") else "left")
    for fold, rows in cv.folds.groupby("fold", sort=True):
        best = rows["macro_f1"].max()
        for i, r in enumerate(rows.itertuples()):
            style = "bold" if r.model == "lightgbm" else None
            f1 = f"[green]{r.macro_f1:.3f}[/]" if r.macro_f1 == best else f"{r.macro_f1:.3f}"
            t.add_row(
                str(fold) if i == 0 else "",
                _period(r) if i == 0 else "",
                f"{r.train_rows}" if i == 0 else "",
                f"{r.test_rows}" if i == 0 else "",
                r.model,
                f1,
                f"{r.balanced_accuracy:.3f}",
                f"{r.log_loss:.3f}",
                style=style,
                end_section=i == len(rows) - 1,
            )
    for model, s in cv.summary.iterrows():
        t.add_row("mean", "", "", "", str(model), *[f"{s[f'{k}_mean']:.3f} ± {s[f'{k}_std']:.3f}" for k, _ in _METRICS])
    return t


def fold_table_text(cv: CVResult) -> str:
    console = Console(width=140, record=True, file=io.StringIO(), color_system=None)
    console.print(fold_table(cv))
    return console.export_text()


def per_class_table(cv: CVResult) -> Table:
    t = Table(title="Out-of-fold precision / recall per regime", box=box.SIMPLE_HEAD)
    t.add_column("regime")
    t.add_column("support", justify="right")
    models = list(cv.confusion)
    for m in models:
        t.add_column(f"{m} P/R", justify="right")
    regimes = cv.per_class.loc[models[0]].index
    for regime in regimes:
        cells = [f"{cv.per_class.loc[(m, regime), 'precision']:.2f} / {cv.per_class.loc[(m, regime), 'recall']:.2f}" for m in models]
        t.add_row(regime, str(int(cv.per_class.loc[(models[0], regime), "support"])), *cells)
    return t


def _balance_table(balance: pd.DataFrame) -> Table:
    t = Table(title="Regime labels (class balance)", box=box.SIMPLE_HEAD)
    for name in ("regime", "bars", "share"):
        t.add_column(name, justify="left" if name == "regime" else "right")
    for regime, r in balance.iterrows():
        t.add_row(str(regime), str(int(r["bars"])), f"{r['share']:.1%}")
    return t


def _period(r: Any) -> str:
    return f"{fmt_ts(r.test_start_ms)[:10]} .. {fmt_ts(r.test_end_ms - 1)[:10]}"
