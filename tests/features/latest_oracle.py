"""A slow, obvious newest row to hold `features.latest` against, for any input (NaN, zeros, gaps).

The full build refuses a whole frame when any row is not finite, so it cannot say what the newest
row should be when bad candles sit somewhere in the window. This says it the plain way: the gap-free
run the newest bar ends, `core.resample` on it (DataFrames), `catalog.compute_template` on every
timeframe's whole series, the newest value of each. NaN where a window reaches before the run.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.candles import COLUMNS, grid_origin_ms
from core.resample import resample
from core.timeframes import timeframe_ms
from features.catalog import compute_template, compute_time
from features.spec import FeatureSpec


def oracle_row(ts: np.ndarray, ohlcv: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    """The newest row of sorted, on-grid candles `ts` / (n, 5) `ohlcv`, NaN where not available."""
    base = spec.base_timeframe
    base_ms = timeframe_ms(base)
    need = spec.warmup_base_bars
    ts, ohlcv = ts[-need:], ohlcv[-need:]
    breaks = np.flatnonzero(np.diff(ts) != base_ms)
    start = int(breaks[-1]) + 1 if len(breaks) else 0
    run = pd.DataFrame({"ts": ts[start:], **{c: ohlcv[start:, j] for j, c in enumerate(COLUMNS[1:])}})
    values: dict[str, float] = {f"{base}_{k}": float(v[-1]) for k, v in compute_time(ts[-1:]).items()}
    values |= _newest(run, base)
    t_close = int(ts[-1]) + base_ms
    for tf in spec.timeframes:
        tf_ms, origin = timeframe_ms(tf), grid_origin_ms(tf)
        higher = resample(run, base, tf)
        want = (t_close - origin) // tf_ms * tf_ms + origin - tf_ms
        if len(higher) and int(higher["ts"].iloc[-1]) == want:
            values |= _newest(higher, tf)
    return np.array([values.get(name, np.nan) for name in spec.names])


def _newest(candles: pd.DataFrame, tf: str) -> dict[str, float]:
    feats = compute_template(*[candles[c].to_numpy(dtype=np.float64) for c in COLUMNS[1:]])
    return {f"{tf}_{k}": float(v[-1]) for k, v in feats.items()}
