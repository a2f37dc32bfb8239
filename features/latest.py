"""The live runner's newest feature row, in plain numpy: only the windows the newest bar needs.

`latest_row(ts, ohlcv, spec)` gives the row as a float64 array in `spec.names` order; `build_latest`
wraps it in a one-row DataFrame for callers that hold a candle frame. Both are bit-identical to
`build_features` for that bar: every kernel output depends only on its declared window
(`features.kernels`), so each timeframe is computed on just the bars its warm-up covers — the last
`warm[base]` base candles, and for a higher timeframe r base bars long the last `warm[tf]*r + r - 1`
base candles, aggregated like `core.resample.resample` (complete buckets only) — with the very same
`features.catalog` code as the full build.

Why not pandas: on a ~1,300-bar window, selecting columns, resampling into a DataFrame and building
the output frame cost ~3 ms a bar in pandas 3; the arithmetic itself is a fraction of that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.candles import COLUMNS, find_gaps, fmt_ts, grid_origin_ms
from core.errors import DataError
from core.timeframes import timeframe_ms
from features.catalog import TIME_FEATURES, compute_template, compute_time
from features.spec import FeatureSpec

# core.resample rounds summed volumes back to 8 decimals where a float has room for them.
_ROUNDABLE_VOLUME = 2**53 / 1e8
_VOLUME_DECIMALS = 8


def build_latest(window: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """The feature row of the newest bar of `window`, computed from its trailing `spec.warmup_base_bars` bars.

    Bit-identical to `build_features` on any longer history for that bar, and available exactly
    when the full build has that row. Otherwise a DataError names the minimum bars or the gap.
    """
    ts, ohlcv = candle_arrays(window.iloc[-spec.warmup_base_bars :])  # the row needs only these
    row = latest_row(ts, ohlcv, spec)
    return pd.DataFrame(row[None, :], columns=spec.names, index=pd.Index([int(ts[-1])], name="ts"))


def candle_arrays(candles: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(open times as they are, float64 (n, 5) open/high/low/close/volume) of a candle frame."""
    names = list(candles.columns)
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        raise DataError(f"candles lack column(s) {', '.join(missing)}", f"pass a frame with columns {', '.join(COLUMNS)}")
    ts = candles["ts"].to_numpy()
    if names == list(COLUMNS):  # the usual layout: one conversion instead of five column look-ups
        return ts, candles.to_numpy(dtype=np.float64)[:, 1:]
    return ts, np.column_stack([candles[c].to_numpy(dtype=np.float64) for c in COLUMNS[1:]])


def latest_row(ts: np.ndarray, ohlcv: Sequence[np.ndarray] | np.ndarray, spec: FeatureSpec) -> np.ndarray:
    """The newest bar's features (float64, `spec.names` order) from open times `ts` (int64 ms) and the
    open, high, low, close, volume columns (a sequence of 5 arrays or an (n, 5) array), newest last."""
    lay = _layout(spec)
    need = lay.need
    ts = _checked_ts(np.asarray(ts)[-need:], spec.base_timeframe, lay.base_ms)
    cols = [np.asarray(c, dtype=np.float64)[-need:] for c in (ohlcv.T if isinstance(ohlcv, np.ndarray) else ohlcv)]
    if len(cols) != 5 or any(len(c) != len(ts) for c in cols):
        raise DataError("candle columns do not match the open times", "pass open, high, low, close, volume of equal length")
    if not len(ts):
        raise DataError("no candles to build the newest feature row from", f"pass the last {need} candles")
    breaks = np.flatnonzero(np.diff(ts) != lay.base_ms)
    # The full build restarts after a gap; so does this (the row may still exist after it).
    start = int(breaks[-1]) + 1 if len(breaks) else 0
    row = _values(ts[start:], [c[start:] for c in cols], lay)
    if not np.isfinite(row).all():
        _raise_unavailable(ts, row, spec, lay.base_ms)
    return row


@dataclass(frozen=True)
class _Higher:
    tf_ms: int
    ratio: int  # base bars per candle
    origin_ms: int
    tail_bars: int  # base bars the newest closed candle's windows need
    cols: dict[str, int]  # template key -> column


@dataclass(frozen=True)
class _Layout:
    spec: FeatureSpec
    need: int  # spec.warmup_base_bars (a property that walks every feature)
    base_ms: int
    base_tail: int
    time_cols: dict[str, int]
    base_cols: dict[str, int]
    higher: tuple[_Higher, ...]


_LAYOUTS: dict[int, _Layout] = {}


def _layout(spec: FeatureSpec) -> _Layout:
    """Columns and tail lengths per timeframe, worked out once per spec object (hashing a spec costs more)."""
    lay = _LAYOUTS.get(id(spec))
    if lay is not None and lay.spec is spec:
        return lay
    base = spec.base_timeframe
    base_ms = timeframe_ms(base)
    col = {name: j for j, name in enumerate(spec.names)}
    warm = dict.fromkeys(spec.all_timeframes, 1)
    for f in spec.features:
        warm[f.timeframe] = max(warm[f.timeframe], f.warmup_bars)

    def cols_of(tf: str, keys: list[str]) -> dict[str, int]:
        return {k: col[f"{tf}_{k}"] for k in keys if f"{tf}_{k}" in col}

    template_keys = [f.name.removeprefix(f"{base}_") for f in spec.features if f.timeframe == base]
    higher = []
    for tf in spec.timeframes:
        tf_ms = timeframe_ms(tf)
        r = tf_ms // base_ms
        keys = [f.name.removeprefix(f"{tf}_") for f in spec.features if f.timeframe == tf]
        higher.append(_Higher(tf_ms, r, grid_origin_ms(tf), warm[tf] * r + r - 1, cols_of(tf, keys)))
    time_keys = [k for k in template_keys if k in TIME_FEATURES]
    lay = _Layout(spec, spec.warmup_base_bars, base_ms, warm[base], cols_of(base, time_keys),
                  cols_of(base, [k for k in template_keys if k not in time_keys]), tuple(higher))
    if len(_LAYOUTS) > 64:  # specs are few (one per loaded model); never let a caller grow this without bound
        _LAYOUTS.clear()
    _LAYOUTS[id(spec)] = lay
    return lay


def _values(ts: np.ndarray, cols: list[np.ndarray], lay: _Layout) -> np.ndarray:
    """The newest bar of one gap-free run; NaN where its windows reach before the run's start."""
    row = np.full(len(lay.spec.features), np.nan)
    _put(row, lay.time_cols, compute_time(ts[-1:]), -1)
    # ascontiguousarray: the kernels are compiled for contiguous arrays (an (n, 5) block's columns are not).
    _put(row, lay.base_cols, compute_template(*(np.ascontiguousarray(c[-lay.base_tail :]) for c in cols)), -1)
    for h in lay.higher:
        k = min(len(ts), h.tail_bars)
        higher_ts, ohlcv = _resample_run(ts[-k:], [c[-k:] for c in cols], h)
        if not len(higher_ts):
            continue
        # The newest candle closed by the bar's close opens at T = floor((t + base) / tf) * tf - tf.
        want = (int(ts[-1]) + lay.base_ms - h.origin_ms) // h.tf_ms * h.tf_ms + h.origin_ms - h.tf_ms
        if int(higher_ts[-1]) == want:  # complete buckets only: the wanted one may be absent
            _put(row, h.cols, _higher_template(h, ohlcv), -1)
    return row


# (timeframe ms, the candles' bytes) -> the template of the newest candle. A higher candle closes once
# every `ratio` base bars, so the same inputs come back ratio - 1 times in a row per pair: a pure
# function of exactly these bytes, looked up instead of recomputed (bit-identical by construction).
_HIGHER_MEMO: dict[tuple[int, bytes], dict[str, np.ndarray]] = {}
_HIGHER_MEMO_MAX = 256


def _higher_template(h: _Higher, ohlcv: list[np.ndarray]) -> dict[str, np.ndarray]:
    key = (h.tf_ms, b"".join(c.tobytes() for c in ohlcv))
    feats = _HIGHER_MEMO.get(key)
    if feats is None:
        full = compute_template(*ohlcv)
        feats = {k: v[-1:] for k, v in full.items()}  # only the newest value is ever read
        if len(_HIGHER_MEMO) >= _HIGHER_MEMO_MAX:
            _HIGHER_MEMO.clear()  # a few pairs x timeframes live at once; clearing is safe under threads
        _HIGHER_MEMO[key] = feats
    return feats


def _put(row: np.ndarray, cols: dict[str, int], feats: dict[str, np.ndarray], at: int) -> None:
    for key, j in cols.items():
        row[j] = feats[key][at]


def _resample_run(ts: np.ndarray, cols: list[np.ndarray], h: _Higher) -> tuple[np.ndarray, list[np.ndarray]]:
    """`core.resample.resample` of base candles into complete `h` candles, same numpy operations (so the
    same bits), without the DataFrames. Open times and open, high, low, close, volume columns."""
    if not len(ts):
        return ts, []
    bucket = (ts - h.origin_ms) // h.tf_ms
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    ends = np.r_[starts[1:], len(ts)]
    complete = (ends - starts) == h.ratio
    first, last = starts[complete], ends[complete] - 1
    o, hi, lo, c, v = cols
    volume = np.add.reduceat(v, starts)[complete]
    roundable = np.abs(volume) < _ROUNDABLE_VOLUME
    volume = np.where(roundable, np.round(volume, _VOLUME_DECIMALS), volume)
    return bucket[first] * h.tf_ms + h.origin_ms, [
        o[first],
        np.maximum.reduceat(hi, starts)[complete],
        np.minimum.reduceat(lo, starts)[complete],
        c[last],
        volume,
    ]


def _checked_ts(ts: np.ndarray, base_tf: str, base_ms: int) -> np.ndarray:
    if ts.dtype.kind not in "iu":
        raise DataError(f"candle column ts has dtype {ts.dtype}", "ts must be int64 epoch milliseconds (open time)")
    ts = ts.astype(np.int64, copy=False)
    if len(ts) > 1 and not np.all(ts[1:] > ts[:-1]):
        raise DataError("candles are not sorted by ts and unique", "sort and de-duplicate them (core.candles.validate_candles)")
    if np.any(ts % base_ms):
        raise DataError(f"candle timestamps are off the {base_tf} grid", f"pass {base_tf} candles (core.candles.validate_candles)")
    return ts


def _raise_unavailable(ts: np.ndarray, row: np.ndarray, spec: FeatureSpec, base_ms: int) -> None:
    need = spec.warmup_base_bars
    newest = fmt_ts(int(ts[-1]))
    gaps = find_gaps(ts, base_ms)
    if gaps:
        last = gaps[-1]
        raise DataError(
            f"gap in the last {need} {spec.base_timeframe} candles ({last.describe()}): the newest feature "
            f"row ({newest}) needs {need} consecutive candles and cannot be built across the gap",
            f"fill the gap from the exchange, or wait until {fmt_ts(last.before_ts + (need - 1) * base_ms)}",
        )
    if np.isnan(row).any():
        raise DataError(
            f"the newest feature row ({newest}) needs {need} consecutive {spec.base_timeframe} candles; "
            f"the window has {len(ts)}",
            f"keep at least {need} candles (spec.warmup_base_bars) in the live window",
        )
    j = int(np.flatnonzero(~np.isfinite(row))[0])
    raise DataError(
        f"feature {spec.names[j]} is not finite at {newest}",
        "the candles hold impossible values there (zero or negative prices?); validate them with core.candles",
    )
