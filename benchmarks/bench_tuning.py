"""Tuning throughput on one year of 5m candles, and the wall time of `aiotrade train` on the bundled data.

    .venv/bin/python -m benchmarks tuning

1. Trials/s for the first 500 trials of one regime study on Binance BTC/USDT 5m 2023 (104,816 bars from
   ../shared): 3 walk-forward tuning windows over the first 75% (each trial backtests ~79k bars unless
   the median pruner stops it after a window), the default local journal storage, TPE multivariate.
   Goal: >= 50 trials/s per core. Measured in 1 process, in 1 process with 2 backtest threads (Optuna's
   own work stays on one core: the GIL), and in 2 worker processes sharing the study through the
   journal (`pipeline.tune_procs`, what `tuning.n_jobs` = 2 does in `aiotrade train`; forked after the
   warm-up, the wall includes starting them). Optuna's own time (ask/tell, TPE sampling, pruning
   checks, storage writes) is reported separately from the backtests; CPU time beside the wall.
   The regime series is a stand-in for the model's out-of-fold predictions (the sign of the trailing
   day's return: up / down / flat), so the benchmark needs no training; it decides which bars the
   study's regime trades, not the cost of a backtest bar.
2. Wall time of `aiotrade train` (the whole pipeline) on the bundled sample with the default config,
   in a temp folder (own MLflow store and Optuna journal). Goal: <= 2 min on 2 cores.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
YEAR_5M = ROOT.parent / "shared" / "data" / "ohlcv" / "binance" / "2023_1h_5m" / "BTC_USDT-5m.feather"
N_TRIALS = 500
GOAL_PER_CORE = 50.0


def _data(n_jobs: int):
    from core.config import Config
    from core.market_rules import default_rules
    from pipeline.importers import read_candle_file
    from pipeline.tune_objective import PairSeries, TuningData, make_windows
    from strategies.risk import RunSettings
    from strategies.simulator import Bars

    df = read_candle_file(YEAR_5M).frame.sort_values("ts").reset_index(drop=True)
    cfg = Config.model_validate({"market": {"pairs": ["BTC/USDT"]},
                                 "tuning": {"n_trials": N_TRIALS, "n_jobs": n_jobs}})
    close = df["close"].to_numpy()
    day = np.r_[np.zeros(288), close[288:] / close[:-288] - 1.0]
    raw = np.where(day > 0.01, 0, np.where(day < -0.01, 1, 2)).astype(np.int64)
    raw[:288] = -1
    pair = PairSeries("BTC/USDT", Bars.from_frame(df), raw, np.full(len(df), 0.8))
    folds, holdout = make_windows([pair], cfg.tuning.folds, cfg.tuning.holdout_pct)
    rules = {"BTC/USDT": default_rules("binance", "BTC/USDT", float(close[0]))}
    return cfg, TuningData([pair], rules, RunSettings.from_config(cfg, 1), ["up", "down", "flat", "unused"],
                           folds, holdout), len(df)


def bench_trials(n_jobs: int, journal: Path, processes: bool = False) -> dict[str, float]:
    """The first N_TRIALS trials of one study: in this process on `n_jobs` backtest threads, or
    (`processes`) on `n_jobs` worker processes of one thread each, sharing the study via the journal."""
    import optuna

    from pipeline.tune import Objective, StudySpec, batch_size, open_study, run_trials
    from pipeline.tune_procs import Task, run_tasks
    from pipeline.tuning_storage import open_storage

    cfg, data, n_bars = _data(n_jobs)
    spec = StudySpec("regime-2-flat", regime=2)
    url = f"journal:{journal}"
    name = f"bench-{n_jobs}{'p' if processes else 't'}"
    study = open_study(open_storage(url), url, name, spec, cfg, seed=cfg.tuning.seed)
    threads = 1 if processes else n_jobs
    objective = Objective(data, spec, cfg, threads=threads)
    run_trials(study, objective, 8, batch_size(threads))  # numba compile / cache load, outside the timing
    t0, c0 = time.perf_counter(), time.process_time()
    if processes:
        tasks = [Task(name, spec, cfg.tuning.seed + 1000 * i, N_TRIALS + 8) for i in range(n_jobs)]
        results = run_tasks(tasks, data, cfg, url, n_jobs)
        wall, optuna_s = time.perf_counter() - t0, sum(r.optuna_s for r in results)
        cpu = time.process_time() - c0 + sum(r.cpu_s + r.init_cpu_s for r in results)
    else:
        wall, optuna_s = run_trials(study, objective, N_TRIALS + 8, batch_size(threads))
        cpu = time.process_time() - c0
    trials = study.get_trials(deepcopy=False)[8:]
    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in trials)
    tuning_bars = sum(len(data.slice(p, w).bars) for p in data.pairs for w in data.folds)
    return {"n_bars": n_bars, "tuning_bars": tuning_bars, "trials": len(trials), "pruned": pruned,
            "wall_s": wall, "optuna_s": optuna_s, "cpu_s": cpu,
            "numbers_unique": len({t.number for t in study.get_trials(deepcopy=False)}) == len(study.get_trials())}


def bench_train() -> float | None:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp}/mlruns/mlflow.db"}
        (Path(tmp) / "mlruns").mkdir()
        cmd = [sys.executable, "-m", "pipeline.cli.main", "train", "--store", str(ROOT / "pipeline" / "sample_data")]
        t0 = time.perf_counter()
        out = subprocess.run(cmd, cwd=tmp, env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if out.returncode != 0:
            print(f"  aiotrade train failed (exit {out.returncode}): {out.stderr.strip()[-800:]}")
            return None
        for line in out.stdout.splitlines():
            if "Out-of-sample" in line or "adaptive policy" in line or "buy and hold" in line:
                print("  | " + line.strip())
        return wall


def main() -> None:
    print(f"load average at start: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} "
          f"on {os.cpu_count()} cores")
    if not YEAR_5M.is_file():
        print(f"skipped tuning throughput: {YEAR_5M} not found (needs ../shared)")
    else:
        with tempfile.TemporaryDirectory() as tmp:
            for n_jobs, processes in ((1, False), (2, False), (2, True)):
                how = f"{n_jobs} process(es) x 1 thread" if processes or n_jobs == 1 else f"1 process x {n_jobs} threads"
                r = bench_trials(n_jobs, Path(tmp) / f"journal-{n_jobs}{processes}.log", processes)
                per_s = r["trials"] / r["wall_s"]
                objective_s = r["wall_s"] * (n_jobs if processes else 1) - r["optuna_s"]
                print(f"tuning, {how}: {r['trials']} trials ({r['pruned']} pruned) on {r['n_bars']:,} bars "
                      f"({r['tuning_bars']:,} in the tuning windows) in {r['wall_s']:.1f} s = {per_s:.1f} trials/s "
                      f"= {per_s / n_jobs:.1f} per core (goal >= {GOAL_PER_CORE:.0f}: {per_s / n_jobs / GOAL_PER_CORE:.2f}x); "
                      f"CPU {r['cpu_s']:.1f} s = {r['trials'] / r['cpu_s']:.1f} trials per CPU-second (what a free "
                      f"core would give); trial numbers unique: {r['numbers_unique']}")
                print(f"  Optuna's own time (TPE sampling, ask/tell, pruning, journal): {r['optuna_s']:.1f} s = "
                      f"{1000 * r['optuna_s'] / r['trials']:.1f} ms/trial"
                      + (" (summed over the processes)" if processes else f" ({100 * r['optuna_s'] / r['wall_s']:.0f}% of the wall)"))
                print(f"  backtests and the rest: {objective_s:.1f} s = {1000 * objective_s / r['trials']:.1f} ms/trial")
    wall = bench_train()
    if wall is not None:
        print(f"aiotrade train on the bundled sample (default config): {wall:.1f} s wall "
              f"(goal <= 120 s: {wall / 120:.2f}x of the budget); load average now {os.getloadavg()[0]:.2f}")
