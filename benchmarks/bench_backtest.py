"""Backtester speed: one year of 1m candles (525,600) with a 20-level grid plus DCA depth 8.

Prints, measured in this run:
- engine throughput in candles/s (best of 5; wall and CPU time, the box is shared), for the
  two-regime policy (grid 20 levels <-> DCA depth 8, switching with hysteresis) and each engine alone,
  with fees and exchange rules (BTC/USDT filters, 0.1% fees); goal >= 20M candles/s on one core;
- the ratio to the pure-Python reference (tests/strategies/reference/), run on a 20,000-candle
  slice and extrapolated linearly to the year (said so in the output);
- a batch of 100 parameter sets over the year on 1 and 2 threads (`simulate_batch`);
- peak memory (max RSS) of a fresh process running the year's full backtest (curve + fills),
  and of one only loading the candles;
- start-up of a second process with the numba cache warm, against the cold compile (a private
  NUMBA_CACHE_DIR makes both measurable without touching the project's cache).
Candles: the real 1m Binance files in ../shared (BTC, ETH, DOGE, XRP; 2020-05/06 and 2021-04/05),
each rescaled to start where the previous ended and tiled to 525,600 bars; a seeded random walk
when ../shared is absent (the output says which).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
SHARED_1M = REPO.parent / "shared" / "data" / "ohlcv" / "binance"
N_BARS = 525_600
MIN_MS = 60_000


def year_of_1m() -> tuple[pd.DataFrame, str]:
    files = sorted(SHARED_1M.glob("*_1m_5m/*-1m.json"))
    if not files:
        rng = np.random.default_rng(7)
        close = 30_000 * np.exp(np.cumsum(rng.normal(0, 0.0008, N_BARS)))
        open_ = np.concatenate([[30_000.0], close[:-1]])
        wick = np.abs(rng.normal(0, 0.0004, (2, N_BARS))) * close
        high, low = np.maximum(open_, close) + wick[0], np.minimum(open_, close) - wick[1]
        src = "seeded random walk (../shared not found)"
    else:
        parts, level = [], 9_000.0
        for f in files:
            raw = np.asarray(json.loads(f.read_text()), dtype=np.float64)[:, 1:5]
            raw *= level / raw[0, 0]
            level = raw[-1, 3]
            parts.append(raw)
        ohlc = np.concatenate(parts)
        per_tile = len(ohlc)
        reps = -(-N_BARS // len(ohlc))
        tiles = []
        for _ in range(reps):
            seg = ohlc * (level / ohlc[0, 0]) if tiles else ohlc
            level = seg[-1, 3]
            tiles.append(seg)
        ohlc = np.concatenate(tiles)[:N_BARS]
        open_, high, low, close = (np.round(ohlc[:, k], 2) for k in range(4))
        high, low = np.maximum.reduce([high, open_, close]), np.minimum.reduce([low, open_, close])
        src = f"{len(files)} real 1m files from ../shared ({per_tile:,} bars), rescaled and tiled"
    ts = 1_577_836_800_000 + np.arange(N_BARS, dtype=np.int64) * MIN_MS
    df = pd.DataFrame({"ts": ts, "open": open_, "high": high, "low": low, "close": close,
                       "volume": np.ones(N_BARS)})
    return df, src


def workload():
    from core.config import DcaConfig, GridConfig
    from core.market_rules import default_rules
    from strategies.policy import Policy, RegimeParams
    from strategies.risk import RunSettings

    grid = RegimeParams(engine="grid", grid=GridConfig(levels=20, grid_step_pct=0.5, order_size_quote=20.0))
    dca = RegimeParams(engine="dca", dca=DcaConfig(max_safety_orders=8, base_order_quote=20.0,
                                                   safety_order_quote=20.0, volume_scale=1.5, step_scale=1.2,
                                                   price_deviation_pct=1.0, take_profit_pct=1.0))
    policy = Policy(regimes={0: grid, 1: dca}, min_dwell_bars=3, min_regime_probability=0.5)
    settings = RunSettings(capital_quote=5_000.0, max_exposure_pct=80.0, max_drawdown_pct=50.0,
                           daily_loss_limit_pct=10.0)
    return policy, Policy.single(grid), Policy.single(dca), settings, default_rules("binance", "BTC/USDT", 9_000.0)


def daily_regimes(n: int) -> np.ndarray:
    return ((np.arange(n) // 1440) % 2).astype(np.int64)


def _time(fn, repeats: int = 5) -> tuple[float, float]:
    best_wall = best_cpu = float("inf")
    for _ in range(repeats):
        w, c = time.perf_counter(), time.thread_time()
        fn()
        best_wall, best_cpu = min(best_wall, time.perf_counter() - w), min(best_cpu, time.thread_time() - c)
    return best_wall, best_cpu


def engine_speed(df: pd.DataFrame) -> dict[str, tuple[float, float]]:
    from strategies.layout import I_N_DECISIONS, I_N_FILLS
    from strategies.metrics import new_stats
    from strategies.simulator import Bars, _inputs, run_loop, simulate
    from strategies.state import EngineState

    policy, grid, dca, settings, rules = workload()
    bars = Bars.from_frame(df)
    regimes = daily_regimes(len(df))
    rules_arr = rules.as_array()
    out = {}
    for name, pol, reg in (("grid 20 + DCA depth 8, daily regime switch", policy, regimes),
                           ("grid 20 levels only", grid, None), ("DCA depth 8 only", dca, None)):
        table, sets, r, p = _inputs(pol, settings, len(bars), reg, None)
        n_fills = [0, 0]

        def once(table=table, sets=sets, r=r, p=p, n_fills=n_fills):
            s = EngineState.new(settings.capital_quote)
            no_log, empty = np.zeros((0, 14)), np.empty(0)
            run_loop(bars.ts, bars.open, bars.high, bars.low, bars.close, r, p, table, rules_arr, sets, s.sf, s.si,
                     s.grid, s.legacy, s.orders, no_log, new_stats(settings.capital_quote), empty, empty,
                     np.empty(0, dtype=np.int64))
            n_fills[0], n_fills[1] = int(s.si[I_N_FILLS]), int(s.si[I_N_DECISIONS])

        once()  # compile or load from cache
        wall, cpu = _time(once)
        out[name] = (len(bars) / wall, len(bars) / cpu)
        print(f"  {name:<45} {len(bars) / wall / 1e6:6.1f} M candles/s wall, {len(bars) / cpu / 1e6:6.1f} M/s CPU"
              f"  ({n_fills[0]:,} fills, {n_fills[1]:,} closes re-decided)")
    wall, cpu = _time(lambda: simulate(bars, policy, rules, settings, regimes), repeats=3)
    print(f"  {'same policy via simulate() (curve + fills + metrics)':<45} {len(bars) / wall / 1e6:6.1f} M candles/s "
          f"wall, {len(bars) / cpu / 1e6:6.1f} M/s CPU")
    return out


def reference_speed(df: pd.DataFrame, engine_cps: float) -> None:
    sys.path.insert(0, str(REPO))
    from tests.strategies.reference import Reference

    policy, _, _, settings, rules = workload()
    n = 20_000
    sl = df.iloc[:n]
    ref = Reference(policy, rules, settings)
    cols = [sl[k].to_numpy() for k in ("ts", "open", "high", "low", "close")]
    t = time.perf_counter()
    ref.run(*cols, daily_regimes(n))
    ref_cps = n / (time.perf_counter() - t)
    print(f"  Python reference: {ref_cps:,.0f} candles/s on a {n:,}-candle slice -> {N_BARS / ref_cps:,.0f} s "
          f"for the year (extrapolated); engine/reference = {engine_cps / ref_cps:,.0f}x")


def batch_speed(df: pd.DataFrame) -> None:
    from core.config import DcaConfig, GridConfig
    from strategies.policy import Policy, RegimeParams
    from strategies.simulator import Bars, simulate_batch

    _, _, _, settings, rules = workload()
    bars = Bars.from_frame(df)
    rng = np.random.default_rng(1)
    sets = []
    for _ in range(100):
        g = GridConfig(levels=int(rng.integers(6, 30)), grid_step_pct=float(rng.uniform(0.2, 1.5)))
        d = DcaConfig(max_safety_orders=int(rng.integers(2, 9)), price_deviation_pct=float(rng.uniform(0.5, 2)),
                      take_profit_pct=float(rng.uniform(0.5, 2)), volume_scale=float(rng.uniform(1, 1.6)),
                      step_scale=float(rng.uniform(1, 1.3)))
        sets.append(Policy(regimes={0: RegimeParams(engine="grid", grid=g), 1: RegimeParams(engine="dca", dca=d)},
                           min_dwell_bars=3))
    regimes = daily_regimes(len(bars))
    simulate_batch(bars, sets[:2], rules, settings, regimes, n_jobs=2)  # warm-up
    times = {}
    for jobs in (1, 2):
        tracemalloc.start()
        t = time.perf_counter()
        simulate_batch(bars, sets, rules, settings, regimes, n_jobs=jobs)
        times[jobs] = time.perf_counter() - t
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        print(f"  100 parameter sets x {len(bars):,} candles, n_jobs={jobs}: {times[jobs]:.2f} s = "
              f"{100 / times[jobs]:.1f} runs/s, {100 * len(bars) / times[jobs] / 1e6:.1f} M candles/s; "
              f"{peak:.1f} MB allocated at peak")
    print(f"  speed-up from the second core: {times[1] / times[2]:.2f}x")


_CHILD = textwrap.dedent("""
    import gc, resource, sys, time, json, tracemalloc
    t0 = time.perf_counter()
    sys.path.insert(0, {repo!r})
    from benchmarks.bench_backtest import workload, year_of_1m, daily_regimes
    from strategies.simulator import simulate
    t_import = time.perf_counter() - t0
    df, _ = year_of_1m()
    df = df.iloc[:{n}].copy()
    gc.collect()
    policy, _, _, settings, rules = workload()
    t_sp = time.perf_counter()
    import scipy.linalg  # numba imports it at its first compile or cache load (its BLAS probe)
    t_scipy = time.perf_counter() - t_sp
    if {trace!r}:  # tracemalloc slows Python code down: only for the memory figure
        tracemalloc.start()
    t1 = time.perf_counter()
    res = simulate(df, policy, rules, settings, daily_regimes({n}))
    first = time.perf_counter() - t1
    peak = tracemalloc.get_traced_memory()[1]
    print(json.dumps({{"import_s": t_import, "first_call_s": first, "traced_peak_mb": peak / 2**20,
                       "scipy_s": t_scipy,
                       "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                       "fills": len(res.fills)}}))
""")


def _child(n: int, env: dict[str, str], trace: bool = False) -> dict[str, float]:
    code = _CHILD.format(repo=str(REPO), n=n, trace=trace)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def memory_and_startup() -> None:
    env = dict(os.environ)
    year = _child(N_BARS, env, trace=True)
    print(f"  full-year simulate() (equity, inventory and regime curves, {year['fills']:,} fills, metrics): "
          f"{year['traced_peak_mb']:.1f} MB allocated at peak (tracemalloc); process max RSS "
          f"{year['rss_mb']:.0f} MB (interpreter, pandas, numba, the JSON candle files loaded)")
    with tempfile.TemporaryDirectory() as cache:
        env_cold = {**env, "NUMBA_CACHE_DIR": cache}
        cold = _child(1_000, env_cold)
        warm = _child(1_000, env_cold)
    print(f"  first process (empty numba cache): import {cold['import_s']:.2f} s, first backtest call "
          f"{cold['first_call_s']:.2f} s (compiles)")
    print(f"  second process (cache written by the first): import {warm['import_s']:.2f} s, first backtest "
          f"call {warm['first_call_s']:.2f} s (loads from cache), plus {warm['scipy_s']:.2f} s for the "
          "scipy.linalg import numba makes at its first use in any process (timed apart)")


def main() -> None:
    df, src = year_of_1m()
    print(f"candles: {len(df):,} x 1m from {src}")
    print("engine, one thread:")
    speeds = engine_speed(df)
    for name, (wall, cpu) in speeds.items():
        verdict = "met" if wall >= 20e6 else "met in CPU time only" if cpu >= 20e6 else "NOT met"
        print(f"  goal >= 20 M candles/s on one core, {name}: {verdict} ({wall / 1e6:.1f} M/s wall, "
              f"{cpu / 1e6:.1f} M/s CPU)")
    print("reference:")
    reference_speed(df, speeds["grid 20 + DCA depth 8, daily regime switch"][0])
    print("batch (simulate_batch, threads without the GIL):")
    batch_speed(df)
    print("memory and start-up (fresh processes):")
    memory_and_startup()


if __name__ == "__main__":
    main()
