"""The live runner's newest feature row: only the candles the newest bar needs, in two numba passes.

`latest_row(ts, ohlcv, spec)` gives the row as a float64 array in `spec.names` order; `build_latest`
wraps it in a one-row DataFrame for callers that hold a candle frame. Both are bit-identical to
`build_features` for that bar: every feature depends only on its declared window, so each
timeframe needs just the candles its warm-up covers — the last `warm[base]` base candles, and for a
higher timeframe r base bars long the complete candles within the last `warm[tf]*r + r - 1` base
candles, aggregated like `core.resample.resample`.

How, per call: `tail_candles.gather_tails` checks the open times and lays out those candles for
every timeframe; numpy takes the logs catalog takes with numpy; `newest_bar.newest_templates`
evaluates each timeframe's template at its newest candle only, with catalog's arithmetic in
catalog's order. Two kernel calls instead of ~40 kernel and numpy calls per timeframe on short
tails (~8x faster on the default spec, `python -m benchmarks features`), and no state is kept
between calls, so any sequence of calls (gaps, restarts, other pairs in between) gives the same rows.

Why not pandas: on a ~1,300-bar window, selecting columns, resampling into a DataFrame and building
the output frame cost ~3 ms a bar in pandas 3; the arithmetic itself is a fraction of that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.candles import COLUMNS, find_gaps, fmt_ts, grid_origin_ms
from core.errors import ConfigError, DataError
from core.timeframes import timeframe_ms
from features import catalog
from features.newest_bar import TEMPLATE_ORDER, newest_templates
from features.spec import FeatureSpec
from features.tail_candles import OK, gather_tails
from features.time_of_bar import put_time_features


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
    ts = np.asarray(ts)[-lay.need :]
    if ts.dtype.kind not in "iu":
        raise DataError(f"candle column ts has dtype {ts.dtype}", "ts must be int64 epoch milliseconds (open time)")
    ts = ts.astype(np.int64, copy=False)
    x = _block(ohlcv, lay.need)
    if x is None or len(x) != len(ts):
        _checked_ts(ts, spec.base_timeframe, lay.base_ms)  # bad open times are reported first, as always
        raise DataError("candle columns do not match the open times", "pass open, high, low, close, volume of equal length")
    if not len(ts):
        raise DataError("no candles to build the newest feature row from", f"pass the last {lay.need} candles")
    n_tf = len(lay.slots)
    tails = np.empty((n_tf, 5, lay.cap))
    counts = np.empty(n_tf, dtype=np.int64)
    ratios = np.empty((2, n_tf, lay.cap))
    status = gather_tails(ts, x, lay.base_ms, lay.base_tail, lay.tf_ms, lay.ratio, lay.origin, lay.tail_bars,
                          tails, counts, ratios)  # fmt: skip
    if status != OK:
        _checked_ts(ts, spec.base_timeframe, lay.base_ms)  # raises the message for the status
    # catalog takes these two logs with numpy (errors ignored: impossible prices surface as non-finite)
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log(ratios)
    row = np.full(lay.n_features, np.nan)
    newest_templates(tails, counts, logs[0], logs[1], lay.weights, catalog._LN2, lay.slots, row)
    put_time_features(row, int(ts[-1]), lay.time_cols)
    if not np.isfinite(row).all():
        _raise_unavailable(ts, row, spec, lay.base_ms)
    return row


def _block(ohlcv: Sequence[np.ndarray] | np.ndarray, need: int) -> np.ndarray | None:
    """The last `need` rows as a float64 (k, 5) block (no copy for the usual float64 array), or None
    when the columns are not five or not of one length."""
    if isinstance(ohlcv, np.ndarray):
        if ohlcv.ndim != 2 or ohlcv.shape[1] != 5:
            return None
        return np.asarray(ohlcv[-need:], dtype=np.float64)
    cols = [np.asarray(c, dtype=np.float64)[-need:] for c in ohlcv]
    if len(cols) != 5 or any(c.ndim != 1 or len(c) != len(cols[0]) for c in cols):
        return None
    return np.column_stack(cols)


@dataclass(frozen=True)
class _Layout:
    """Per spec: what the kernels need, as arrays (index 0 the base timeframe, then the higher ones)."""

    spec: FeatureSpec
    need: int  # spec.warmup_base_bars (a property that walks every feature)
    n_features: int
    base_ms: int
    base_tail: int  # base candles the base features read
    cap: int  # the longest warm-up of any timeframe, in its own candles
    tf_ms: np.ndarray  # higher timeframes: length in ms,
    ratio: np.ndarray  # base bars per candle,
    origin: np.ndarray  # grid origin,
    tail_bars: np.ndarray  # base bars the newest closed candle's windows need
    slots: np.ndarray  # (timeframes, len(TEMPLATE)) column of each template feature, -1 if not in the spec
    time_cols: dict[str, int]
    weights: tuple[np.ndarray, ...]


_LAYOUTS: dict[int, _Layout] = {}


def _layout(spec: FeatureSpec) -> _Layout:
    """Worked out once per spec object (hashing a spec costs more than the row)."""
    lay = _LAYOUTS.get(id(spec))
    if lay is not None and lay.spec is spec:
        return lay
    base = spec.base_timeframe
    base_ms = timeframe_ms(base)
    col = {name: j for j, name in enumerate(spec.names)}
    warm = dict.fromkeys(spec.all_timeframes, 1)
    for f in spec.features:
        warm[f.timeframe] = max(warm[f.timeframe], f.warmup_bars)
    tf_ms = np.array([timeframe_ms(tf) for tf in spec.timeframes], dtype=np.int64)
    ratio = tf_ms // base_ms
    for tf, ms in zip(spec.timeframes, tf_ms, strict=True):
        if ms % base_ms or (grid_origin_ms(tf) - grid_origin_ms(base)) % base_ms:
            raise ConfigError(f"cannot build {tf} candles from {base}", "the target timeframe must be a whole multiple of the source timeframe")
    slots = np.array([[col.get(f"{tf}_{key}", -1) for key in TEMPLATE_ORDER] for tf in spec.all_timeframes], dtype=np.int64)
    lay = _Layout(
        spec, spec.warmup_base_bars, len(col), base_ms, warm[base], max(warm.values()), tf_ms, ratio,
        np.array([grid_origin_ms(tf) for tf in spec.timeframes], dtype=np.int64),
        np.array([warm[tf] * r + r - 1 for tf, r in zip(spec.timeframes, ratio.tolist(), strict=True)], dtype=np.int64),
        slots, {k: col[f"{base}_{k}"] for k in catalog.TIME_FEATURES if f"{base}_{k}" in col},
        (catalog._W14, catalog._W14_ADX, catalog._E12, catalog._E26, catalog._E36, catalog._E9),
    )  # fmt: skip
    if len(_LAYOUTS) > 64:  # specs are few (one per loaded model); never let a caller grow this without bound
        _LAYOUTS.clear()
    _LAYOUTS[id(spec)] = lay
    return lay


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
