"""One feature builder for every caller: training matrix, backtest matrix, the live runner's newest row.

Multi-timeframe join without lookahead: a base bar opening at t closes at t + base; a higher
candle opening at T closes at T + tf and is attached to the base bar only if T + tf <= t + base.
So the 1h candle opening at 10:00 first appears on the 5m bar opening at 10:55 (closing at 11:00).
Higher candles come from `core.resample.resample`, which emits complete buckets only.

Gaps (missing base candles) are handled segment by segment: each gap-free run of candles is built
on its own, and the rows inside the warm-up after a gap are dropped, like the start of the data.
Nothing is filled or interpolated. `gap_report` lists the gaps; `build_latest` raises a clear
DataError when the newest row cannot be built because of a recent gap.

Every feature value depends only on its declared window (see `features.kernels`), so the full build
and `build_latest` / `latest_row` (`features.latest`: the live runner's newest row, numpy only) on a
trailing window give bit-identical values for the same bar.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.candles import COLUMNS, Gap, find_gaps, fmt_ts
from core.errors import DataError
from core.resample import resample
from core.timeframes import timeframe_ms
from features.catalog import compute_template, compute_time
from features.kernels import expand_rows
from features.spec import FeatureSpec


def build_features(candles: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """Feature matrix for every bar with a complete warm-up: index `ts` (base open time), columns spec.names.

    Rows inside the warm-up (at the start and after each gap) are dropped; no value is NaN. Which
    rows survive is known before any indicator runs (the warm-ups are exact), so the output is
    allocated once at its final size (the 1-year 1m matrix alone is ~0.5 GB).
    """
    ts = _checked_ts(candles, spec.base_timeframe)
    base_ms = timeframe_ms(spec.base_timeframe)
    plans = [_plan(candles, ts, a, b, spec) for a, b in _segments(ts, base_ms)]
    n_rows = sum(p.stop - p.first for p in plans)
    col = {name: j for j, name in enumerate(spec.names)}
    # Fortran order: each feature is one contiguous column, and the frame wraps it without a copy.
    out = np.empty((n_rows, len(col)), order="F")
    index = np.empty(n_rows, dtype=np.int64)
    row = 0
    for p in plans:
        n = p.stop - p.first
        if n:
            _fill(out[row : row + n], p, spec, col)
            index[row : row + n] = ts[p.first : p.stop]
            row += n
    _require_finite(out, index, spec.names)
    return pd.DataFrame(out, columns=spec.names, index=pd.Index(index, name="ts"), copy=False)


def gap_report(candles: pd.DataFrame, spec: FeatureSpec) -> tuple[Gap, ...]:
    """The gaps in the base candles (each costs the warm-up after it)."""
    ts = _checked_ts(candles, spec.base_timeframe)
    return find_gaps(ts, timeframe_ms(spec.base_timeframe))


@dataclass
class _Plan:
    """One gap-free run of base candles [start, stop) whose rows [first, stop) get features."""

    seg: pd.DataFrame
    start: int
    first: int
    stop: int
    # higher timeframe -> (its complete candles, for each base bar the row of the newest closed one or -1)
    higher: dict[str, tuple[pd.DataFrame, np.ndarray]]


def _plan(candles: pd.DataFrame, ts: np.ndarray, start: int, stop: int, spec: FeatureSpec) -> _Plan:
    base = spec.base_timeframe
    seg = candles.iloc[start:stop]
    warm = _warmups(spec)
    first = warm[base] - 1  # the base windows need warm[base] bars of the segment
    higher = {}
    for tf in spec.timeframes:
        h = resample(seg, base, tf)
        idx = _closed_index(ts[start:stop], h["ts"].to_numpy(), timeframe_ms(base), timeframe_ms(tf))
        # In a gap-free segment the higher candles are consecutive: a row needs index >= W-1.
        first = max(first, int(np.searchsorted(idx, warm[tf] - 1)))
        higher[tf] = (h, idx)
    return _Plan(seg, start, start + min(first, stop - start), stop, higher)


def _fill(block: np.ndarray, p: _Plan, spec: FeatureSpec, col: dict[str, int]) -> None:
    """Compute the plan's features and write rows [first, stop) into `block`, one column at a time."""
    base = spec.base_timeframe
    lo = p.first - p.start
    for k, v in compute_time(p.seg["ts"].to_numpy()[lo:]).items():
        block[:, col[f"{base}_{k}"]] = v
    for k, v in compute_template(*_ohlcv(p.seg)).items():
        block[:, col[f"{base}_{k}"]] = v[lo:]
    for tf, (h, idx) in p.higher.items():
        feats = compute_template(*_ohlcv(h))
        col0 = col[f"{tf}_{next(iter(feats))}"]
        # The spec lists each timeframe's template features together and in template order.
        assert [col[f"{tf}_{k}"] for k in feats] == list(range(col0, col0 + len(feats)))
        expand_rows(block, col0, np.column_stack(list(feats.values())), idx[lo:])


def _closed_index(base_ts: np.ndarray, higher_ts: np.ndarray, base_ms: int, tf_ms: int) -> np.ndarray:
    """For each base bar, the row of the newest higher candle closed by the bar's close, or -1.

    The wanted candle opens at T = floor((t + base) / tf) * tf - tf on the grid of the resampled
    candles. It may be absent (an incomplete bucket is never emitted), which gives -1.
    """
    if not len(higher_ts):
        return np.full(len(base_ts), -1, dtype=np.int64)
    origin = int(higher_ts[0]) % tf_ms
    want = (base_ts + base_ms - origin) // tf_ms * tf_ms + origin - tf_ms
    pos = np.minimum(np.searchsorted(higher_ts, want), len(higher_ts) - 1)
    return np.where(higher_ts[pos] == want, pos, -1)


def _ohlcv(df: pd.DataFrame) -> list[np.ndarray]:
    return [df[c].to_numpy(dtype=np.float64) for c in COLUMNS[1:]]


def _warmups(spec: FeatureSpec) -> dict[str, int]:
    """Per timeframe, the longest window (in its own bars) of the spec's features."""
    warm = dict.fromkeys(spec.all_timeframes, 1)
    for f in spec.features:
        warm[f.timeframe] = max(warm[f.timeframe], f.warmup_bars)
    return warm


def _segments(ts: np.ndarray, base_ms: int) -> list[tuple[int, int]]:
    if not len(ts):
        return []
    cuts = np.flatnonzero(np.diff(ts) != base_ms) + 1
    bounds = [0, *cuts.tolist(), len(ts)]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def _require_finite(out: np.ndarray, index: np.ndarray, names: list[str]) -> None:
    """Past the warm-up every value is finite by construction; anything else means bad candles."""
    for j, name in enumerate(names):
        ok = np.isfinite(out[:, j])
        if not ok.all():
            i = int(np.flatnonzero(~ok)[0])
            raise DataError(
                f"feature {name} is not finite at {fmt_ts(int(index[i]))} ({int((~ok).sum())} rows)",
                "the candles hold impossible values there (zero or negative prices?); validate them with core.candles",
            )


def _checked_ts(candles: pd.DataFrame, base_tf: str) -> np.ndarray:
    missing = [c for c in COLUMNS if c not in candles.columns]
    if missing:
        raise DataError(f"candles lack column(s) {', '.join(missing)}", f"pass a frame with columns {', '.join(COLUMNS)}")
    ts = candles["ts"].to_numpy()
    if ts.dtype.kind not in "iu":
        raise DataError(f"candle column ts has dtype {ts.dtype}", "ts must be int64 epoch milliseconds (open time)")
    ts = ts.astype(np.int64, copy=False)
    base_ms = timeframe_ms(base_tf)
    if len(ts) > 1 and not np.all(ts[1:] > ts[:-1]):
        raise DataError("candles are not sorted by ts and unique", "sort and de-duplicate them (core.candles.validate_candles)")
    if np.any(ts % base_ms):
        raise DataError(f"candle timestamps are off the {base_tf} grid", f"pass {base_tf} candles (core.candles.validate_candles)")
    return ts
