"""Candle store speed: load 1 year of 1m candles (target <= 100 ms) and resample it to
5m/15m/1h/4h/1d (target <= 300 ms in total), each next to its pure-pandas reference.

    .venv/bin/python -m benchmarks store

The year is real Binance 1m candles from ../shared (BTC/USDT 2020-05/06, 43,199 gap-free rows)
tiled to 525,600 rows on a continuous grid; synthetic candles when ../shared is absent.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from core.candles import COLUMNS
from core.resample import resample
from core.store import CandleStore

ROWS = 525_600  # one year of 1m candles
START_MS = 1_577_836_800_000  # 2020-01-01 00:00 UTC
TARGETS = ("5m", "15m", "1h", "4h", "1d")
REAL_1M = Path(__file__).resolve().parents[2] / "shared" / "data" / "ohlcv" / "binance" / "2020-05_06_1m_5m" / "BTC_USDT-1m.json"
REPEATS = 7


def one_year_of_1m() -> tuple[pd.DataFrame, str]:
    if REAL_1M.is_file():
        values = np.array(json.loads(REAL_1M.read_text()), dtype=np.float64)[:, 1:6]
        source = f"real BTC/USDT 1m ({len(values):,} rows) tiled"
    else:
        rng = np.random.default_rng(0)
        close = 10_000 * np.exp(np.cumsum(rng.normal(0, 1e-3, ROWS)))
        open_ = np.r_[close[0], close[:-1]]
        spread = np.abs(rng.normal(0, 5e-4, ROWS)) * close
        values = np.c_[open_, np.maximum(open_, close) + spread, np.minimum(open_, close) - spread, close, rng.uniform(0, 50, ROWS)]
        source = "synthetic random walk"
    tiled = np.tile(values, (-(-ROWS // len(values)), 1))[:ROWS]
    df = pd.DataFrame({"ts": START_MS + np.arange(ROWS, dtype=np.int64) * 60_000})
    for i, col in enumerate(COLUMNS[1:]):
        df[col] = np.ascontiguousarray(tiled[:, i])
    return df, source


def best_ms(fn: Callable[[], object], repeats: int = REPEATS) -> tuple[float, float]:
    """(best, median) wall time in ms over `repeats` runs after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return min(times), statistics.median(times)


def pandas_resample(df: pd.DataFrame, rule: str) -> pd.DataFrame:
    """The usual pandas way (keeps partial buckets: a looser job than ours)."""
    idx = df.set_index(pd.to_datetime(df["ts"], unit="ms", utc=True))
    agg = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    return idx.resample(rule, label="left", closed="left").agg(agg).dropna()


def main() -> None:
    df, source = one_year_of_1m()
    print(f"data: {ROWS:,} 1m candles ({source})")
    with tempfile.TemporaryDirectory() as tmp:
        store = CandleStore(tmp)
        t0 = time.perf_counter()
        res = store.write("binance", "BTC/USDT", "1m", df)
        print(f"write (validate + atomic Parquet): {(time.perf_counter() - t0) * 1000:.0f} ms, {res.path.stat().st_size / 1e6:.1f} MB")
        load_best, load_med = best_ms(lambda: store.load("binance", "BTC/USDT", "1m"))
        ref_best, ref_med = best_ms(lambda: pd.read_parquet(res.path))
        loaded = store.load("binance", "BTC/USDT", "1m")
    assert len(loaded) == ROWS
    print(f"load (read + full validation): best {load_best:.1f} ms, median {load_med:.1f} ms  (target <= 100 ms)")
    print(f"  reference pd.read_parquet (no validation): best {ref_best:.1f} ms, median {ref_med:.1f} ms")
    print(f"  ratio load / reference: {load_best / ref_best:.2f}x")

    rules = {"5m": "5min", "15m": "15min", "1h": "1h", "4h": "4h", "1d": "1D"}
    ours_total = sum(best_ms(lambda tf=tf: resample(loaded, "1m", tf))[0] for tf in TARGETS)
    ref_total = sum(best_ms(lambda tf=tf: pandas_resample(loaded, rules[tf]), repeats=3)[0] for tf in TARGETS)
    counts = {tf: len(resample(loaded, "1m", tf)) for tf in TARGETS}
    print(f"resample 1m -> {'/'.join(TARGETS)}: {ours_total:.1f} ms total (best of {REPEATS} each; target <= 300 ms)")
    print(f"  rows: {', '.join(f'{tf} {n:,}' for tf, n in counts.items())}")
    print(f"  reference pandas .resample().agg(): {ref_total:.1f} ms total")
    print(f"  ratio ours / reference: {ours_total / ref_total:.2f}x")
    print(f"verdict: load {'OK' if load_best <= 100 else 'OVER'} ({load_best:.0f}/100 ms), "
          f"resample {'OK' if ours_total <= 300 else 'OVER'} ({ours_total:.0f}/300 ms)")


if __name__ == "__main__":
    main()
