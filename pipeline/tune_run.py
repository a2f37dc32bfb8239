"""Run every study of one tuning job (regimes + baselines) on one storage and collect the policy.

`tune_policy` is what `aiotrade train` calls after the regime model's cross-validation; the same
studies can be joined by other processes or machines (`aiotrade tune --worker`), whose trials count
toward the same budget. Study names carry a hash of everything the scores depend on (config, data,
out-of-fold predictions, windows), so a rerun on the same inputs resumes its studies instead of
mixing trials scored on different data.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

from core.config import Config
from pipeline.tune import (
    Objective,
    StudyOutcome,
    StudySpec,
    best_of,
    open_study,
    regime_active_bars,
    run_trials,
    study_specs,
)
from pipeline.tune_objective import TuningData
from pipeline.tune_space import SAFE_DEFAULT
from pipeline.tuning_storage import open_storage, resolve_storage, storage_errors
from strategies.policy import Policy, RegimeParams

log = logging.getLogger(__name__)
FALLBACK_NOTE = "falls back to the safe default: no new entries (inventory keeps its exit orders)"


@dataclass
class TuningResult:
    policy: Policy  # the adaptive policy: one row per regime, hysteresis from the config
    static_grid: RegimeParams
    static_dca: RegimeParams
    outcomes: list[StudyOutcome]
    storage: str  # canonical storage string (password-free form is `tuning_storage.describe`)
    prefix: str

    def outcome(self, key: str) -> StudyOutcome:
        return next(o for o in self.outcomes if o.spec.key == key)

    @property
    def fallbacks(self) -> dict[str, str]:
        return {o.spec.key: o.fallback for o in self.outcomes if o.fallback and o.spec.regime is not None}


def batch_size(n_jobs: int) -> int:
    """Trials per batch of one process with `n_jobs` backtest threads (see pipeline.tune.batch_size)."""
    from pipeline.tune import batch_size as _batch_size

    return _batch_size(n_jobs)


def tune_policy(
    data: TuningData,
    cfg: Config,
    prefix: str,
    storage: str | None = None,
    context: dict | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> TuningResult:
    """Tune every regime and both baselines; `context` is stored on each study for `--worker` processes.

    The studies run side by side on `tuning.n_jobs` worker processes (pipeline.tune_procs), each
    study in one process with its own seed, so the result does not depend on the number of processes."""
    from pipeline.tune_procs import Task, run_tasks

    url = resolve_storage(storage if storage is not None else cfg.tuning.storage)
    st = open_storage(url)
    n_trials = cfg.tuning.n_trials
    outcomes: dict[str, StudyOutcome] = {}
    studies, tasks = {}, []
    for idx, spec in enumerate(study_specs(data.regime_names)):
        name = f"{prefix}.{spec.key}"
        active = regime_active_bars(data, spec.regime) if spec.regime is not None else None
        if active is not None and active < cfg.tuning.min_regime_bars:
            why = ("the model never predicts this regime (with the hysteresis) in the tuning windows"
                   if active == 0 else
                   f"the regime is active on only {active} bars of the tuning windows "
                   f"(< tuning.min_regime_bars = {cfg.tuning.min_regime_bars})")
            log.warning("%s: %s; %s", spec.key, why, FALLBACK_NOTE)
            outcomes[spec.key] = StudyOutcome(spec, name, SAFE_DEFAULT, None, None, active_bars=active,
                                              fallback=f"{why}; {FALLBACK_NOTE}")
            continue
        seed = cfg.tuning.seed + idx
        studies[spec.key] = (open_study(st, url, name, spec, cfg, seed=seed), active)
        if context is not None:
            with storage_errors(url):
                store_context(studies[spec.key][0], spec, cfg, context)
        tasks.append(Task(name, spec, seed, n_trials))

    def progress(task: Task) -> None:
        if on_progress:
            s = studies[task.spec.key][0]
            on_progress(task.spec.key, min(n_trials, len(s.get_trials(deepcopy=False))), n_trials)

    with storage_errors(url):
        results = run_tasks(tasks, data, cfg, url, cfg.tuning.n_jobs, progress)
    for r in results:
        spec = r.task.spec
        study, active = studies[spec.key]
        with storage_errors(url):
            rp, value, number, why = best_of(study, Objective(data, spec, cfg))
            trials = study.get_trials(deepcopy=False)
        outcome = StudyOutcome(
            spec, r.task.study_name, rp, value, number, active_bars=active, trial_seconds=r.wall_s,
            sampler_seconds=r.optuna_s,
            n_complete=sum(t.state.name == "COMPLETE" for t in trials),
            n_pruned=sum(t.state.name == "PRUNED" for t in trials),
            values=[float(t.value) for t in trials if t.value is not None],
        )
        if why:
            outcome.fallback = why + (f"; {FALLBACK_NOTE}" if spec.regime is not None else "")
            log.warning("%s: %s", spec.key, outcome.fallback)
        outcomes[spec.key] = outcome
    ordered = [outcomes[spec.key] for spec in study_specs(data.regime_names)]
    rows = {o.spec.regime: o.params for o in ordered if o.spec.regime is not None}
    policy = Policy(regimes=rows, min_dwell_bars=cfg.strategy.min_dwell_bars,
                    min_regime_probability=cfg.strategy.min_regime_probability)
    by_key = {o.spec.key: o for o in ordered}
    return TuningResult(policy, by_key["static-grid"].params, by_key["static-dca"].params, ordered, url, prefix)


def store_context(study, spec: StudySpec, cfg: Config, context: dict) -> None:
    """What a `--worker` process needs to rebuild this study's objective (set once per study)."""
    if "aiotrade" in study.user_attrs:
        return
    study.set_user_attr("aiotrade", {**context, "study_key": spec.key, "regime": spec.regime,
                                     "engine": spec.engine, "n_trials": cfg.tuning.n_trials,
                                     "created_by_pid": os.getpid()})


def join_study(storage: str | None, study_name: str, store_dir: str | None = None,
               on_progress: Callable[[str, int, int], None] | None = None, n_trials: int | None = None) -> StudyOutcome:
    """`aiotrade tune --worker`: run trials of an existing study until its budget (or `n_trials` in all,
    when given) is reached."""
    import optuna

    from pipeline.tune import make_pruner, make_sampler, worker_id
    from pipeline.tune_context import rebuild
    from pipeline.tuning_storage import TuningStorageError, load_study

    url = resolve_storage(storage)
    st = open_storage(url)
    probe = load_study(st, study_name, url)
    ctx = probe.user_attrs.get("aiotrade")
    if not ctx:
        raise TuningStorageError(f"study {study_name!r} carries no aiotrade context: it was not created by "
                                 "`aiotrade train`", "join a study listed by `aiotrade tune --list`")
    cfg, data = rebuild(ctx, store_dir)
    spec = StudySpec(ctx["study_key"], regime=ctx["regime"], engine=ctx["engine"])
    n_trials = int(ctx["n_trials"]) if n_trials is None else n_trials
    # Another seed than the creator's, so the two processes do not propose the same parameters.
    study = optuna.load_study(study_name=study_name, storage=st, sampler=make_sampler(os.getpid(), n_trials),
                              pruner=make_pruner())
    objective = Objective(data, spec, cfg)

    def progress(k: int) -> None:
        if on_progress:
            on_progress(spec.key, len(study.get_trials(deepcopy=False)), n_trials)

    with storage_errors(url):
        wall_s, optuna_s = run_trials(study, objective, n_trials, batch_size(cfg.tuning.n_jobs), progress)
        rp, value, number, why = best_of(study, objective)
        trials = study.get_trials(deepcopy=False)
    mine = sum(t.user_attrs.get("worker") == worker_id() for t in trials)
    return StudyOutcome(spec, study_name, rp, value, number, fallback=why, trial_seconds=wall_s,
                        sampler_seconds=optuna_s, n_complete=sum(t.state.name == "COMPLETE" for t in trials),
                        n_pruned=sum(t.state.name == "PRUNED" for t in trials), own_trials=mine)


def list_studies(storage: str | None) -> list[dict]:
    """Every study in the storage with its budget and progress (for `aiotrade tune --list`)."""
    url = resolve_storage(storage)
    st = open_storage(url)
    out = []
    with storage_errors(url):
        for s in st.get_all_studies():
            ctx = s.user_attrs.get("aiotrade") or {}
            trials = st.get_all_trials(s._study_id, deepcopy=False)
            values = [t.value for t in trials if t.state.name == "COMPLETE" and t.value is not None]
            out.append({"study": s.study_name, "trials": len(trials), "target": ctx.get("n_trials"),
                        "complete": len(values), "best": max(values) if values else None, "joinable": bool(ctx)})
    return out
