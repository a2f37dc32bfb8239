"""Per-regime Optuna studies and the static baselines, tuned the same way on the same windows.

One study per regime: the regime's row of the policy table is the trial's parameters, every other
regime is paused, and the simulator runs each tuning window with the model's out-of-fold regimes and
probabilities (hysteresis included), so the set is scored exactly on the bars where the model would
hand it control. Two baseline studies tune one static grid and one static DCA over all bars (no
regimes). Every study: TPE (multivariate, seeded, constant liar for batches), median pruner per window.

Trials run in batches: a batch is asked, each window is simulated for the whole batch at once with
`simulate_batch` (on `Objective.threads` threads; numba releases the GIL), pruned trials drop out
between windows, and the rest are told their mean score. `aiotrade train` runs the studies side by
side in `tuning.n_jobs` worker processes of one thread each (pipeline/tune_procs.py: Optuna's own
work, most of a trial's time, holds the GIL, so threads did not scale). Several processes
(`aiotrade tune --worker`) can share a study through the storage; the trial budget counts every
process's trials.

A regime the hysteresis never activates (or activates on fewer than `tuning.min_regime_bars` bars of
the tuning windows) is not tuned: it gets the safe default (no new entries, exits kept) and the
result says why.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from core.config import Config
from pipeline.tune_objective import (
    PENALTY,
    TuningData,
    final_score,
    window_fills,
    window_metrics,
    window_score,
)
from pipeline.tune_space import SAFE_DEFAULT, Engine, Sizing, policy_table, suggest, to_regime_params
from pipeline.tuning_storage import storage_errors
from strategies.policy import RegimeParams

log = logging.getLogger(__name__)
COUNTED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)


@dataclass(frozen=True)
class StudySpec:
    """One study: a regime's row of the adaptive policy, or a static baseline (one row, no regimes)."""

    key: str  # "regime-0-trend_up", "static-grid", "static-dca"
    regime: int | None = None
    engine: Engine | None = None  # fixed engine (baselines); None lets the trial choose

    @property
    def with_regimes(self) -> bool:
        return self.regime is not None


@dataclass
class StudyOutcome:
    spec: StudySpec
    study_name: str
    params: RegimeParams
    best_value: float | None
    best_trial: int | None
    n_complete: int = 0
    n_pruned: int = 0
    active_bars: int | None = None  # regime studies: bars the regime is active in the tuning windows
    fallback: str | None = None  # why the safe default is used instead of a tuned set
    trial_seconds: float = 0.0  # wall time of this process's trials
    sampler_seconds: float = 0.0  # of which: Optuna's own (ask, tell, pruning checks, storage)
    values: list[float] = field(default_factory=list)
    own_trials: int = 0  # trials this process ran (workers)


def study_specs(regime_names: list[str]) -> list[StudySpec]:
    specs = [StudySpec(f"regime-{i}-{name}", regime=i) for i, name in enumerate(regime_names)]
    return specs + [StudySpec("static-grid", engine="grid"), StudySpec("static-dca", engine="dca")]


def worker_id() -> str:
    """host:pid of this process, stored on every trial it runs (who ran what, across machines)."""
    import os
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"


def batch_size(threads: int) -> int:
    """Trials per batch: enough to keep every thread busy per window, few enough for TPE to learn between."""
    return max(4, 4 * threads)


def make_sampler(seed: int, n_trials: int) -> optuna.samplers.TPESampler:
    return optuna.samplers.TPESampler(
        seed=seed, multivariate=True, constant_liar=True, n_startup_trials=max(5, min(20, n_trials // 5))
    )


def make_pruner() -> optuna.pruners.MedianPruner:
    return optuna.pruners.MedianPruner(n_startup_trials=8, n_warmup_steps=0)


def sizing_for(data: TuningData) -> Sizing:
    deployable = data.settings.capital_quote * data.settings.max_exposure_pct / 100.0
    floor = max(data.rules[p.pair].min_entry_quote(float(np.max(p.bars.close))) for p in data.pairs)
    return Sizing(deployable_quote=deployable, min_order_quote=floor)


def regime_active_bars(data: TuningData, regime: int) -> int:
    """Bars of the tuning windows on which the hysteresis arms `regime` (what the simulator will follow)."""
    total = 0
    for pair in data.pairs:
        for w in data.folds:
            sl = data.slice(pair, w)
            if sl is not None:
                total += int(np.count_nonzero(sl.active == regime))
    return total


class Objective:
    """Scores batches of trials of one study window by window; knows nothing of storage or processes."""

    def __init__(self, data: TuningData, spec: StudySpec, cfg: Config, threads: int | None = None) -> None:
        self.data, self.spec, self.cfg = data, spec, cfg
        self.sizing = sizing_for(data)
        # Backtest threads per batch; 1 in a worker process (pipeline.tune_procs: processes share the cores).
        self.threads = cfg.tuning.n_jobs if threads is None else threads

    def params_of(self, p: dict[str, Any]) -> RegimeParams | None:
        return to_regime_params(p, self.sizing, self.cfg.strategy)

    def table(self, rp: RegimeParams) -> np.ndarray:
        if self.spec.regime is None:
            return policy_table({0: rp}, 1)
        return policy_table({self.spec.regime: rp}, self.data.n_regimes)

    def window_scores(self, window_index: int, params: list[RegimeParams | None]) -> list[tuple[float, int]]:
        """(score, fills) of each parameter set on one tuning window; pauses and infeasible sizes need no
        backtest (a pause is flat and exempt from the trade minimum; a size below the venue minimum is
        infeasible)."""
        out = [(0.0, -1) if rp is not None and rp.engine == "none" else (PENALTY * 2, 0) for rp in params]
        todo = [i for i, rp in enumerate(params) if rp is not None and rp.engine != "none"]
        if todo:
            tables = [self.table(params[i]) for i in todo]  # type: ignore[arg-type]
            ms = window_metrics(self.data, self.data.folds[window_index], tables, self.spec.with_regimes,
                                self.threads)
            for i, per_pair in zip(todo, ms, strict=True):
                out[i] = (window_score(per_pair, self.cfg.tuning), window_fills(per_pair)) if per_pair else (0.0, 0)
        return out

    def value(self, scores: list[float], fills: int) -> float:
        """The objective from the window scores; fills < 0 marks a pause (exempt from the trade minimum)."""
        if fills < 0:
            return float(np.mean(scores))
        return final_score(scores, fills, self.cfg.tuning)


def run_trials(study: optuna.Study, objective: Objective, n_trials: int, batch_size: int,
               on_batch: Callable[[int], None] | None = None) -> tuple[float, float]:
    """Run batches until the study (all processes together) holds `n_trials` trials.

    Returns (wall seconds, Optuna's share of them)."""
    import time

    t_all = time.perf_counter()
    t_optuna = 0.0
    n_windows = len(objective.data.folds)
    while True:
        t0 = time.perf_counter()
        done = len(study.get_trials(deepcopy=False, states=COUNTED))
        k = min(batch_size, n_trials - done)
        if k <= 0:
            break
        trials = [study.ask() for _ in range(k)]
        for t in trials:
            t.set_user_attr("worker", worker_id())
        raw = [suggest(t, objective.spec.engine) for t in trials]
        t_optuna += time.perf_counter() - t0
        params = [objective.params_of(p) for p in raw]
        scores: list[list[float]] = [[] for _ in range(k)]
        fills = [0] * k
        alive = list(range(k))
        for w in range(n_windows):
            results = objective.window_scores(w, [params[i] for i in alive])
            t0 = time.perf_counter()
            still = []
            for i, (score, n_fills) in zip(alive, results, strict=True):
                scores[i].append(score)
                fills[i] = -1 if n_fills < 0 else fills[i] + n_fills
                trials[i].report(float(np.mean(scores[i])), w)
                if w + 1 < n_windows and trials[i].should_prune():
                    study.tell(trials[i], state=TrialState.PRUNED)
                else:
                    still.append(i)
            alive = still
            t_optuna += time.perf_counter() - t0
        t0 = time.perf_counter()
        for i in alive:
            study.tell(trials[i], objective.value(scores[i], fills[i]))
        t_optuna += time.perf_counter() - t0
        if on_batch:
            on_batch(k)
    return time.perf_counter() - t_all, t_optuna


def warm_starts(spec: StudySpec, cfg: Config) -> list[dict[str, Any]]:
    """Trials enqueued first: the config's own strategy, and (regime studies) pausing the regime."""
    g, d = cfg.strategy.grid, cfg.strategy.dca
    grid = {"grid_step_pct": g.grid_step_pct, "grid_levels": g.levels, "grid_trailing_up": g.trailing_up}
    dca = {"dca_max_safety_orders": d.max_safety_orders, "dca_price_deviation_pct": d.price_deviation_pct,
           "dca_step_scale": d.step_scale, "dca_volume_scale": d.volume_scale,
           "dca_take_profit_pct": d.take_profit_pct}
    if spec.engine == "grid":
        return [grid]
    if spec.engine == "dca":
        return [dca]
    return [{"engine": "none"}, {"engine": "grid", **grid}, {"engine": "dca", **dca}]


def open_study(storage: Any, url: str, name: str, spec: StudySpec, cfg: Config, seed: int) -> optuna.Study:
    with storage_errors(url):
        study = optuna.create_study(
            study_name=name, storage=storage, direction="maximize", load_if_exists=True,
            sampler=make_sampler(seed, cfg.tuning.n_trials), pruner=make_pruner(),
        )
        if not study.get_trials(deepcopy=False):
            for params in warm_starts(spec, cfg):
                study.enqueue_trial(_clip_to_space(params), skip_if_exists=True)
    return study


def _clip_to_space(params: dict[str, Any]) -> dict[str, Any]:
    """Config values may lie outside the search ranges; Optuna would reject such an enqueued trial."""
    from pipeline import tune_space as s

    bounds = {"grid_step_pct": s.GRID_STEP_PCT, "grid_levels": s.GRID_LEVELS,
              "dca_max_safety_orders": s.DCA_MAX_SAFETY_ORDERS, "dca_price_deviation_pct": s.DCA_DEVIATION_PCT,
              "dca_step_scale": s.DCA_STEP_SCALE, "dca_volume_scale": s.DCA_VOLUME_SCALE,
              "dca_take_profit_pct": s.DCA_TAKE_PROFIT_PCT}
    out = dict(params)
    for k, (lo, hi) in bounds.items():
        if k in out:
            out[k] = type(lo)(min(max(out[k], lo), hi))
    return out


def best_of(study: optuna.Study, objective: Objective) -> tuple[RegimeParams, float | None, int | None, str | None]:
    """The best complete trial's parameters; the safe default (and why) when no set was feasible."""
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not done:
        return SAFE_DEFAULT, None, None, "no trial completed"
    best = max(done, key=lambda t: (t.value, -t.number))
    p = dict(best.params)
    if objective.spec.engine is not None:
        p["engine"] = objective.spec.engine
    rp = objective.params_of(p)
    if rp is None or best.value is None or best.value <= PENALTY:
        why = (f"no parameter set met tuning.min_trades = {objective.cfg.tuning.min_trades} (over the tuning "
               f"windows) and tuning.max_drawdown_pct = {objective.cfg.tuning.max_drawdown_pct:g} (in every window)")
        return (rp if objective.spec.engine is not None and rp is not None else SAFE_DEFAULT), best.value, \
            best.number, why
    return rp, best.value, best.number, None
