"""`aiotrade retrain`: download new candles, train a challenger, and promote it only through a gate.

One retrain (`retrain_once`), under an exclusive file lock (`<mlruns>/retrain.lock`, fcntl.flock: a
second retrain refuses to start; a killed one releases it with its process):

1. download: new closed candles for the config's pairs into the store, when the exchange answers;
   otherwise the step is skipped and the reason logged (training goes on with what is stored);
2. train the challenger: the whole `aiotrade train` pipeline, with the regime classifier logged but
   not registered, and the policy bundle registered as a NEW version WITHOUT the alias;
3. gate: the champion (the version the alias points at) is scored on the challenger's held-back window
   (the most recent bars, never used by the challenger's tuning) with the same backtester: its own
   classifier predicts the regimes there, its own hysteresis arms them, its own table trades them.
   The challenger's score is its adaptive row of the out-of-sample table. Promote when
   `challenger >= champion - tuning.promotion_margin` on `tuning.metric`;
4. the alias moves last, and only on promotion. Either way the decision, both scores and the reason
   are recorded: an MLflow run "retrain gate" (tags and metrics) and tags on the new version
   (`aiotrade.status` = champion | rejected, `aiotrade.gate_reason`).

A crash anywhere before step 4 leaves every alias where it was; the orphan version keeps
`aiotrade.status = candidate`. The champion may have seen part of the window in its own training:
that favours the champion, so the gate errs on the side of keeping it.
"""

from __future__ import annotations

import fcntl
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mlflow
import numpy as np

from core.config import Config
from core.errors import AIOTradeError, ConfigError

log = logging.getLogger(__name__)


@dataclass
class RetrainOutcome:
    promoted: bool
    reason: str
    challenger_version: str | None
    champion_version: str | None  # before the gate
    challenger_score: float | None
    champion_score: float | None
    metric: str
    margin: float
    run_id: str | None = None  # the challenger's train run
    download: str = ""


def state_dir(cfg: Config) -> Path:
    """Where the lock and status files live: beside a local SQLite store, else ./mlruns."""
    from models.registry import tracking_uri

    uri = tracking_uri(cfg.mlflow.tracking_uri)
    if uri.startswith("sqlite:///"):
        return Path(uri.removeprefix("sqlite:///")).resolve().parent
    return Path("mlruns").resolve()


class RetrainLock:
    """An exclusive, non-blocking flock; the file records who holds it (for the message)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def __enter__(self) -> RetrainLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise ConfigError(f"another retrain is running ({holder}; lock {self.path})",
                              "wait for it to finish; a retrain that died releases the lock by itself") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S %Z')}".encode())
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def write_status(path: Path, stage: str, **info: Any) -> None:
    """The retrain's progress (`<mlruns>/retrain.status.json`), for operators and the crash test."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"stage": stage, "pid": os.getpid(), "time": time.time(), **info}, default=str))
    os.replace(tmp, path)


def parse_schedule(expr: str) -> Any:
    """An APScheduler CronTrigger (UTC) from five cron fields; one clear message otherwise."""
    from apscheduler.triggers.cron import CronTrigger

    try:
        return CronTrigger.from_crontab(expr.strip(), timezone="UTC")
    except (ValueError, TypeError) as e:
        raise ConfigError(
            f"--schedule {expr!r} is not a cron expression: {e}",
            "give five fields: minute hour day-of-month month day-of-week, e.g. \"0 3 * * *\" (03:00 UTC daily)",
        ) from None


def gate(challenger: float, champion: float, margin: float) -> bool:
    """Promote when the challenger is not worse than the champion by more than `margin`."""
    return challenger >= champion - margin


def score_of(row_portfolio: dict[str, float], metric: str) -> float:
    """The gate's number for one out-of-sample row: `metric`, finite (as the tuning objective treats it)."""
    from pipeline.tune_objective import metric_value

    m = {"total_return": row_portfolio["return_pct"] / 100.0,
         **{k: row_portfolio[k] for k in ("calmar", "sortino", "sharpe")}}
    return metric_value(m, metric)


def download_new_candles(cfg: Config) -> str:
    """Fetch new candles when the exchange answers; a reason string either way (never raises)."""
    from pipeline.download import RetryPolicy, run_download

    try:
        results = run_download(cfg.exchange.name, list(cfg.market.pairs), [cfg.market.base_timeframe], None, None,
                               cfg.data.store_dir, base_url=cfg.exchange.base_url, timeout_s=cfg.exchange.timeout_s,
                               off_grid=cfg.data.off_grid, policy=RetryPolicy(attempts=2, base_delay_s=1.0))
    except AIOTradeError as e:
        return f"download skipped: {e.problem}"
    except Exception as e:  # network stacks raise more than ccxt maps; retraining must go on
        return f"download skipped: {type(e).__name__}: {str(e)[:200]}"
    return "downloaded " + ", ".join(f"{r.pair} +{r.added}" for r in results)


def retrain_once(cfg: Config, console: Any, *, download: bool = True) -> RetrainOutcome:
    """One retrain under the lock (see the module docstring)."""
    folder = state_dir(cfg)
    status = folder / "retrain.status.json"
    with RetrainLock(folder / "retrain.lock"):
        write_status(status, "download")
        note = download_new_candles(cfg) if download else "download skipped: --no-download"
        console.print(f"  {note}")
        log.info(note)
        write_status(status, "train")
        ctx = train_challenger(cfg, console)
        st = ctx.policy
        write_status(status, "registered", version=st.version)
        outcome = judge(cfg, ctx, console)
        outcome.download = note
        write_status(status, "promoting" if outcome.promoted else "recording", **asdict(outcome))
        record(cfg, outcome)
        write_status(status, "done", **asdict(outcome))
    return outcome


def train_challenger(cfg: Config, console: Any) -> Any:
    """The full train pipeline; the bundle registered as a new version, no alias moved."""
    from core.store import CandleStore
    from models.registry import use_store
    from pipeline.policy import PolicyState, full_steps
    from pipeline.train import TrainContext, run_train

    use_store(cfg.mlflow.tracking_uri, cfg.mlflow.experiment)
    mlflow.set_experiment(cfg.mlflow.experiment)  # the run lands in the configured experiment
    ctx = TrainContext(config=cfg, store=CandleStore(cfg.data.store_dir), console=console, register=False)
    ctx.policy = PolicyState(promote=False, register=True)
    return run_train(ctx, full_steps())


def judge(cfg: Config, ctx: Any, console: Any) -> RetrainOutcome:
    """Score the champion on the challenger's held-back window and apply the gate (no registry change)."""
    from models.policy_bundle import alias_version
    from pipeline.tune_report import metric_key

    name, alias, metric = cfg.mlflow.model_name, cfg.mlflow.alias, cfg.tuning.metric
    margin = cfg.tuning.promotion_margin
    st = ctx.policy
    chal_row = st.table[0]
    chal = score_of(chal_row.portfolio, metric)
    champion = alias_version(name, alias)
    base = dict(challenger_version=st.version, champion_version=champion, metric=metric, margin=margin,
                run_id=ctx.run_id)
    if champion is None:
        return RetrainOutcome(True, f"no version carries @{alias} yet", challenger_score=chal, champion_score=None,
                              **base)
    champ, why_not = champion_score(cfg, ctx, f"models:/{name}/{champion}")
    if champ is None:
        return RetrainOutcome(True, f"the champion cannot be scored on this data ({why_not})",
                              challenger_score=chal, champion_score=None, **base)
    ok = gate(chal, champ, margin)
    key = metric_key(metric)
    words = (f"challenger {metric} {chal:.4g} vs champion {champ:.4g} (margin {margin:g}) on "
             f"the held-back window ({key} of the portfolio)")
    reason = f"promoted: {words}" if ok else f"kept the champion: the challenger is worse by more than the margin; {words}"
    console.print(f"  gate: {reason}")
    return RetrainOutcome(ok, reason, challenger_score=chal, champion_score=champ, **base)


def champion_score(cfg: Config, ctx: Any, uri: str) -> tuple[float | None, str]:
    """The champion on the challenger's window: its classifier, hysteresis and table; same backtester."""
    from features import build_features
    from models.evaluate import align_proba
    from models.policy_bundle import load_policy_bundle
    from pipeline.tune_eval import evaluate_policy
    from strategies.regime import active_regimes

    bundle = load_policy_bundle(uri)
    data = ctx.policy.data
    if bundle.base_timeframe != cfg.market.base_timeframe:
        return None, f"it trades {bundle.base_timeframe}, the challenger {cfg.market.base_timeframe}"
    active = {}
    for pair in data.pairs:
        X = build_features(ctx.candles[pair.pair], bundle.spec)
        ts = pair.bars.ts
        raw = np.full(len(ts), -1, dtype=np.int64)
        prob = np.zeros(len(ts))
        rows = X.index.to_numpy()
        keep = np.isin(rows, ts)
        if keep.any():
            proba = align_proba(bundle.classifier.predict_proba(X.loc[keep]), bundle.classifier.classes_)
            pos = np.searchsorted(ts, rows[keep])
            raw[pos], prob[pos] = np.argmax(proba, axis=1), proba.max(axis=1)
        active[pair.pair] = active_regimes(raw, prob, bundle.policy.min_dwell_bars,
                                           bundle.policy.min_regime_probability)
    row = evaluate_policy(data, data.holdout, bundle.policy, "champion", active=active)
    return score_of(row.portfolio, cfg.tuning.metric), ""


def record(cfg: Config, o: RetrainOutcome) -> None:
    """Record the decision (a "retrain gate" run and version tags); move the alias last, on promotion."""
    from models.policy_bundle import set_alias

    name, alias = cfg.mlflow.model_name, cfg.mlflow.alias
    client = mlflow.tracking.MlflowClient()
    with mlflow.start_run(run_name="retrain gate"):
        mlflow.set_tags({"aiotrade.retrain.decision": "promoted" if o.promoted else "kept champion",
                         "aiotrade.retrain.reason": o.reason[:5000], "challenger_version": str(o.challenger_version),
                         "champion_version": str(o.champion_version), "challenger_run_id": str(o.run_id),
                         "download": o.download[:1000]})
        mlflow.log_params({"metric": o.metric, "promotion_margin": o.margin})
        mlflow.log_metrics({k: v for k, v in (("challenger_score", o.challenger_score),
                                              ("champion_score", o.champion_score))
                            if v is not None and math.isfinite(v)})
    if o.run_id:
        client.set_tag(o.run_id, "aiotrade.retrain.decision", "promoted" if o.promoted else "kept champion")
    if o.challenger_version is None:
        return
    client.set_model_version_tag(name, o.challenger_version, "aiotrade.gate_reason", o.reason[:5000])
    if o.promoted:
        set_alias(name, alias, o.challenger_version)
    else:
        client.set_model_version_tag(name, o.challenger_version, "aiotrade.status", "rejected")


def run_schedule(cfg: Config, expr: str, console: Any, download: bool = True) -> None:
    """Run `retrain_once` at every cron tick (UTC) until interrupted; a failed run is logged, not fatal."""
    from apscheduler.schedulers.blocking import BlockingScheduler

    trigger = parse_schedule(expr)
    scheduler = BlockingScheduler(timezone="UTC")

    def job() -> None:
        try:
            o = retrain_once(cfg, console, download=download)
            console.print(f"retrain: {'promoted' if o.promoted else 'kept the champion'}: {o.reason}")
        except AIOTradeError as e:
            console.print(f"[red]retrain failed:[/] {e.problem}")
            log.error("retrain failed: %s", e.problem)

    scheduler.add_job(job, trigger, max_instances=1, coalesce=True, misfire_grace_time=3600, id="retrain")
    nxt = trigger.get_next_fire_time(None, datetime.now(UTC))
    console.print(f"retrain scheduled by cron {expr!r} (UTC); next run {nxt:%Y-%m-%d %H:%M %Z}; Ctrl-C stops")
    scheduler.start()
