"""Tuning on several cores: whole studies (or one study's trials) run in worker processes that share
the Optuna storage.

Why processes and not threads: most of a trial's time on the bundled sample, and ~90% of it on a year
of 5m candles (benchmarks/bench_tuning.py), is Optuna's own work (multivariate TPE sampling,
ask/tell, journal appends), which is Python holding the GIL. With 2 threads the backtests ran side
by side but the sampling did not: 42.9 trials/s in all against 51.8 with one thread. Each worker
process samples, backtests (one thread) and writes on its own core; the storage (journal file with
an flock, or an RDB) keeps trial numbers unique across processes, as for `aiotrade tune --worker`.

A `Task` names a study and the sampler seed of the process that runs it. `aiotrade train` gives each
study to one process with the seed it would get in-process (`tuning.seed + index`), so a study's
trials do not depend on how many processes ran the job; several tasks on one study (the benchmark)
take different seeds, or their samplers would propose the same parameters.

The calling process compiles (or loads from numba's cache) the backtest kernels once, then forks
its workers where the OS can (Linux; `_start_method` says why that is safe here), so a worker costs
milliseconds instead of the ~4 s of CPU a spawned one spent importing and loading kernels. A script
that calls this on a system without fork needs the `if __name__ == "__main__":` guard (spawn).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.config import Config
from pipeline.tune_objective import TuningData


@dataclass(frozen=True)
class Task:
    study_name: str
    spec: Any  # pipeline.tune.StudySpec
    seed: int
    n_trials: int  # the study's budget (all processes together)


@dataclass(frozen=True)
class TaskResult:
    task: Task
    wall_s: float  # this task's trials, wall time in its process
    optuna_s: float  # of which Optuna's own (TPE sampling, ask/tell, pruning checks, storage)
    started: float  # time.perf_counter() (CLOCK_MONOTONIC: comparable across processes on one host)
    ended: float
    pid: int
    cpu_s: float  # CPU time of this task's trials in its process
    init_cpu_s: float  # CPU time its process spent starting (imports, storage, kernels), 0 after the first task


_WORKER: dict[str, Any] = {}


def _init_worker(data: TuningData, cfg: Config, url: str, warm: bool = True) -> None:
    """Per process: the data, an open storage, and (`warm`) the backtest kernels compiled or loaded."""
    from pipeline.tuning_storage import open_storage

    cpu0 = time.process_time()
    _WORKER.update(data=data, cfg=cfg, url=url, storage=open_storage(url))
    if warm:
        _warm_up(data, cfg)
    _WORKER["init_cpu_s"] = time.process_time() - cpu0


def _reopen_storage() -> None:
    """A forked worker: data and compiled kernels are inherited; only the storage is opened afresh."""
    _init_worker(_WORKER["data"], _WORKER["cfg"], _WORKER["url"], warm=False)


def _warm_up(data: TuningData, cfg: Config) -> None:
    """Load (or compile) the simulator's kernels before any trial is timed: one backtest of one window
    with the config's own grid."""
    from pipeline.tune import Objective, StudySpec, warm_starts

    spec = StudySpec("warm-up", engine="grid")
    obj = Objective(data, spec, cfg, threads=1)
    rp = obj.params_of({"engine": "grid", **warm_starts(spec, cfg)[0]})
    if rp is not None and data.folds:
        obj.window_scores(0, [rp])


def _run_task(task: Task) -> TaskResult:
    import optuna

    from pipeline.tune import Objective, batch_size, make_pruner, make_sampler, run_trials
    from pipeline.tuning_storage import storage_errors

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    data, cfg, url = _WORKER["data"], _WORKER["cfg"], _WORKER["url"]
    with storage_errors(url):
        study = optuna.load_study(study_name=task.study_name, storage=_WORKER["storage"],
                                  sampler=make_sampler(task.seed, task.n_trials), pruner=make_pruner())
        objective = Objective(data, task.spec, cfg, threads=1)
        started, cpu0 = time.perf_counter(), time.process_time()
        wall_s, optuna_s = run_trials(study, objective, task.n_trials, batch_size(1))
    init_cpu_s, _WORKER["init_cpu_s"] = _WORKER.get("init_cpu_s", 0.0), 0.0  # counted once per process
    return TaskResult(task, wall_s, optuna_s, started, time.perf_counter(), os.getpid(),
                      time.process_time() - cpu0, init_cpu_s)


def run_tasks(tasks: list[Task], data: TuningData, cfg: Config, url: str, n_procs: int,
              on_progress: Callable[[Task], None] | None = None, poll_s: float = 1.0) -> list[TaskResult]:
    """Run the tasks on `n_procs` worker processes (in this process when 1), results in task order.

    `on_progress(task)` is called about every `poll_s` for each unfinished task (and once when it ends).
    The kernels are compiled (or loaded from numba's cache) here first, once: forked workers inherit
    them, spawned ones find the cache written."""
    _init_worker(data, cfg, url)
    if n_procs <= 1 or len(tasks) <= 1:
        out = []
        for t in tasks:
            out.append(_run_task(t))
            if on_progress:
                on_progress(t)
        return out
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    mp_context, init, args = _start_method(data, cfg, url)
    sys.stdout.flush()  # a forked worker flushes its copy of the buffers when it ends: no text twice
    sys.stderr.flush()
    with ProcessPoolExecutor(min(n_procs, len(tasks)), mp_context=mp_context, initializer=init,
                             initargs=args) as pool:
        futures = {pool.submit(_run_task, t): t for t in tasks}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=poll_s, return_when=FIRST_COMPLETED)
            for f in done:
                f.result()  # a worker's error surfaces here, at once
            if on_progress:
                for f, t in futures.items():
                    if f in pending or f in done:
                        on_progress(t)
        return [f.result() for f in futures]


def _start_method(data: TuningData, cfg: Config, url: str) -> tuple[Any, Callable[..., None], tuple]:
    """fork where the OS has it (Linux): a worker starts in milliseconds with the data and the compiled
    kernels of this process, where a spawned one pays ~4 s of CPU for imports and the kernel cache.
    Forking is safe here because the workers only backtest (numba, no OpenMP) and use their own storage
    connection; they never touch this process's MLflow run, threads or LightGBM state, and leave
    with os._exit. Elsewhere: spawn."""
    import multiprocessing

    if "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork"), _reopen_storage, ()
    return multiprocessing.get_context("spawn"), _init_worker, (data, cfg, url)
