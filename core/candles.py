"""Candle validation: the one gate every candle frame passes before it is stored, loaded or used.

The contract (docs/DEVELOPING.md): columns `ts` (int64, epoch milliseconds UTC, candle open time)
and `open, high, low, close, volume` (float64), sorted by `ts`, unique.

Decisions, so every caller behaves the same:
- Unsorted or duplicated timestamps are rejected, never sorted or deduplicated here. A source with
  rows out of order or twice is usually a bad concatenation or export; picking a winner silently
  could hide that. (Merging new candles into stored ones is the store's job, with its own rule.)
- Off-grid stamps (Binance's 2018-02-09 HH:28:14.8 hourly candles) are floored to the grid with a
  warning (`off_grid="floor"`, counted in the report) or rejected (`off_grid="reject"`). Flooring
  that makes two candles share a stamp is rejected.
- Timestamps in seconds, microseconds or nanoseconds are rejected with a message here; importers
  convert them first with `epoch_to_ms` (Binance's public-data CSVs switched to microseconds in 2025).
- OHLC must be consistent (low <= min(open, close), high >= max(open, close)), prices > 0, volume >= 0,
  nothing NaN or infinite.
- Gaps are reported (count of missing candles, largest gap, where) and never filled.
Extra columns are dropped; the clean frame has exactly the six contract columns and a RangeIndex.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import numpy as np
import pandas as pd

from core.errors import DataError
from core.timeframes import timeframe_ms

log = logging.getLogger(__name__)

OffGrid = Literal["floor", "reject"]
COLUMNS = ("ts", "open", "high", "low", "close", "volume")
VALUE_COLUMNS = COLUMNS[1:]

# Plausible candle times in ms: 2000-01-01 .. 2100-01-01. Seconds, microseconds and nanoseconds for
# the same dates fall in disjoint ranges, so the magnitude alone tells the unit.
MIN_TS_MS = 946_684_800_000
MAX_TS_MS = 4_102_444_800_000
# 1970-01-01 was a Thursday; exchanges open weekly candles on Monday (1970-01-05).
_WEEK_ORIGIN_MS = 4 * 86_400_000
_SHOW_ROWS = 3


def grid_origin_ms(timeframe: str) -> int:
    """Offset of the timeframe grid from the epoch: 0, except Monday-aligned weeks."""
    return _WEEK_ORIGIN_MS if timeframe == "1w" else 0


def fmt_ts(ts_ms: int | None, utc_suffix: bool = True) -> str:
    """`2023-01-01 00:00 UTC`, with seconds and milliseconds only when the stamp has them."""
    if ts_ms is None:
        return "-"
    dt = datetime.fromtimestamp(int(ts_ms) / 1000, tz=UTC)
    text = dt.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] if ts_ms % 60_000 else dt.strftime("%Y-%m-%d %H:%M")
    return text + " UTC" if utc_suffix else text


@dataclass(frozen=True)
class Gap:
    """Missing candles between two stored ones: `after_ts` and `before_ts` are both present."""

    after_ts: int
    before_ts: int
    missing: int

    def describe(self) -> str:
        return f"{fmt_ts(self.after_ts)} -> {fmt_ts(self.before_ts)} ({self.missing} missing)"


@dataclass(frozen=True)
class CandleReport:
    """What validation found: span, rows, floored off-grid stamps and gaps (never filled)."""

    source: str
    timeframe: str
    rows: int
    first_ts: int | None
    last_ts: int | None
    floored: int = 0
    gaps: tuple[Gap, ...] = ()

    @property
    def missing(self) -> int:
        return sum(g.missing for g in self.gaps)

    @property
    def largest_gap(self) -> Gap | None:
        return max(self.gaps, key=lambda g: g.missing) if self.gaps else None

    def gap_summary(self) -> str:
        """`none` or `17 missing in 2 gaps, largest 16: 2023-03-24 12:35 UTC -> ...`."""
        largest = self.largest_gap
        if largest is None:
            return "none"
        return f"{self.missing} missing in {len(self.gaps)} gap(s), largest {largest.missing}: {largest.describe()}"

    def gap_brief(self) -> str:
        """Short form for tables: `none` or `17 in 2 (max 16)` (missing candles in gaps)."""
        largest = self.largest_gap
        return "none" if largest is None else f"{self.missing} in {len(self.gaps)} (max {largest.missing})"

    def describe(self, max_gaps: int = 5) -> str:
        lines = [
            f"{self.source}: {self.rows} candles {self.timeframe}, {fmt_ts(self.first_ts)} .. {fmt_ts(self.last_ts)}",
            f"  gaps: {self.gap_summary()}",
        ]
        lines += [f"    {g.describe()}" for g in self.gaps[:max_gaps]] if len(self.gaps) > 1 else []
        if len(self.gaps) > max_gaps:
            lines.append(f"    ... and {len(self.gaps) - max_gaps} more")
        if self.floored:
            lines.append(f"  warning: {self.floored} off-grid stamp(s) floored to the {self.timeframe} grid")
        return "\n".join(lines)


def empty_candles() -> pd.DataFrame:
    return pd.DataFrame({c: np.empty(0, dtype=np.int64 if c == "ts" else np.float64) for c in COLUMNS})


def ts_unit_of(value: int) -> str:
    """The epoch unit a single integer stamp is in, judged by magnitude: s, ms, us or ns."""
    v = abs(int(value))
    if v < 10**11:
        return "s"
    if v < 10**14:
        return "ms"
    if v < 10**17:
        return "us"
    return "ns"


def epoch_to_ms(values: np.ndarray) -> np.ndarray:
    """Epoch stamps in s, ms, us or ns (mixed per row is fine) -> int64 milliseconds.

    Per row, because one Binance CSV spanning the 2025 switch can hold both ms and µs.
    Sub-millisecond parts are floored; the grid check then decides about them.
    """
    ts = np.asarray(values)
    if ts.dtype.kind == "f":
        if not np.all(np.isfinite(ts)):
            raise DataError("timestamps contain NaN or infinite values", "every candle needs an open time")
        ts = np.floor(ts).astype(np.int64)
    ts = ts.astype(np.int64, copy=False)
    mag = np.abs(ts)
    out = np.where(mag < 10**11, ts * 1000, ts)
    out = np.where((mag >= 10**14) & (mag < 10**17), ts // 1000, out)
    return np.where(mag >= 10**17, ts // 1_000_000, out)


def validate_candles(
    df: pd.DataFrame, timeframe: str, off_grid: OffGrid = "floor", source: str = "candles"
) -> tuple[pd.DataFrame, CandleReport]:
    """Check `df` against the candle contract; return the clean frame and a report, or raise DataError."""
    tf_ms = timeframe_ms(timeframe)
    _check_columns(df, source)
    ts = _ts_column(df, source)
    values = {c: _float_column(df, c, source) for c in VALUE_COLUMNS}
    _check_ms_range(ts, source)
    _check_values(ts, values, source)
    _check_order(ts, source, "")
    ts, floored = _to_grid(ts, timeframe, tf_ms, off_grid, source)
    if floored:
        _check_order(ts, source, f" after flooring {floored} off-grid stamp(s) to the {timeframe} grid")
    _check_ohlc(ts, values, source)
    # A copy: the arrays may be read-only views of the caller's frame or of an Arrow buffer.
    clean = pd.DataFrame({"ts": ts, **values}, copy=True)
    report = CandleReport(
        source=source,
        timeframe=timeframe,
        rows=len(ts),
        first_ts=int(ts[0]) if len(ts) else None,
        last_ts=int(ts[-1]) if len(ts) else None,
        floored=floored,
        gaps=find_gaps(ts, tf_ms),
    )
    return clean, report


def find_gaps(ts: np.ndarray, tf_ms: int) -> tuple[Gap, ...]:
    """Holes in a sorted, on-grid ts array: where consecutive candles are more than one step apart."""
    step = np.diff(ts)
    idx = np.flatnonzero(step > tf_ms)
    return tuple(Gap(int(ts[i]), int(ts[i + 1]), int(step[i] // tf_ms - 1)) for i in idx)


def _rows(ts: np.ndarray, idx: np.ndarray) -> str:
    shown = ", ".join(f"row {i} ({fmt_ts(int(ts[i]))})" for i in idx[:_SHOW_ROWS])
    more = f" and {len(idx) - _SHOW_ROWS} more" if len(idx) > _SHOW_ROWS else ""
    return shown + more


def _check_columns(df: pd.DataFrame, source: str) -> None:
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        found = ", ".join(map(str, df.columns)) or "(none)"
        raise DataError(
            f"{source}: missing column(s) {', '.join(missing)}; found: {found}; needed: {', '.join(COLUMNS)}",
            "rename the columns (ts = open time in epoch ms UTC) or import the file with `aiotrade import`",
        )


def _ts_column(df: pd.DataFrame, source: str) -> np.ndarray:
    col = df["ts"]
    if col.dtype.kind not in "iu":
        raise DataError(
            f"{source}: column ts has dtype {col.dtype}; it must be int64 epoch milliseconds (UTC open time)",
            "convert it (e.g. df['ts'] = df['date'].astype('int64') // 10**6 for ns datetimes) "
            "or import the file with `aiotrade import`, which converts dates and units",
        )
    return col.to_numpy(dtype=np.int64)


def _float_column(df: pd.DataFrame, name: str, source: str) -> np.ndarray:
    col = df[name]
    if col.dtype.kind not in "iuf":
        raise DataError(
            f"{source}: column {name} has dtype {col.dtype}; it must be numeric (float64)",
            "check the file for text in the price/volume columns",
        )
    return col.to_numpy(dtype=np.float64)


def _check_ms_range(ts: np.ndarray, source: str) -> None:
    if not len(ts):
        return
    bad = np.flatnonzero((ts < MIN_TS_MS) | (ts > MAX_TS_MS))
    if len(bad):
        first = int(ts[bad[0]])
        unit = ts_unit_of(first)
        names = {"s": "seconds", "us": "microseconds", "ns": "nanoseconds", "ms": "milliseconds"}
        what = f"look like {names[unit]}" if unit != "ms" else "are outside 2000..2100"
        raise DataError(
            f"{source}: {len(bad)} timestamp(s) {what}, e.g. row {bad[0]}: ts = {first}; "
            "the store takes epoch milliseconds",
            "import the file with `aiotrade import` (it converts seconds, microseconds and nanoseconds "
            "to milliseconds), or convert ts to ms before writing",
        )


def _check_values(ts: np.ndarray, values: dict[str, np.ndarray], source: str) -> None:
    for name, arr in values.items():
        bad = np.flatnonzero(~np.isfinite(arr) | ((arr < 0) if name == "volume" else (arr <= 0)))
        if len(bad):
            rule = "finite and >= 0" if name == "volume" else "finite and > 0"
            raise DataError(
                f"{source}: {len(bad)} {name} value(s) not {rule}: {_rows(ts, bad)}, e.g. {name} = {arr[bad[0]]}",
                "drop or repair those rows in the source (or re-download them)",
            )


def _check_order(ts: np.ndarray, source: str, context: str) -> None:
    step = np.diff(ts)
    bad = np.flatnonzero(step <= 0)
    if not len(bad):
        return
    i = int(bad[0])
    n_dup = len(ts) - len(np.unique(ts))  # repeats anywhere, not just next to each other
    n_back = int(np.count_nonzero(step < 0))
    if step[i] == 0:
        first = f"rows {i} and {i + 1} share {fmt_ts(int(ts[i]))}"
    else:
        first = f"row {i + 1} ({fmt_ts(int(ts[i + 1]))}) comes after row {i} ({fmt_ts(int(ts[i]))})"
    raise DataError(
        f"{source}: candles not sorted and unique{context} ({n_dup} duplicated, {n_back} out of order); first: {first}",
        "give each candle once, oldest first (e.g. pandas: df.sort_values('ts').drop_duplicates('ts')) "
        "after checking why the source repeats or reorders rows; or re-download it",
    )


def _to_grid(ts: np.ndarray, timeframe: str, tf_ms: int, off_grid: OffGrid, source: str) -> tuple[np.ndarray, int]:
    offset = (ts - grid_origin_ms(timeframe)) % tf_ms
    bad = np.flatnonzero(offset)
    if not len(bad):
        return ts, 0
    where = _rows(ts, bad)
    if off_grid == "reject":
        raise DataError(
            f"{source}: {len(bad)} candle(s) off the {timeframe} grid: {where}",
            "check the timeframe; or set [data] off_grid = \"floor\" to floor such stamps to the grid",
        )
    log.warning("%s: floored %d off-grid stamp(s) to the %s grid: %s", source, len(bad), timeframe, where)
    return ts - offset, len(bad)


def _check_ohlc(ts: np.ndarray, v: dict[str, np.ndarray], source: str) -> None:
    o, h, lo, c = v["open"], v["high"], v["low"], v["close"]
    bad = np.flatnonzero((lo > np.minimum(o, c)) | (h < np.maximum(o, c)))
    if len(bad):
        i = int(bad[0])
        raise DataError(
            f"{source}: {len(bad)} candle(s) with inconsistent OHLC (need low <= open, close <= high): "
            f"{_rows(ts, bad)}; row {i}: open={o[i]} high={h[i]} low={lo[i]} close={c[i]}",
            "check the column order (open, high, low, close, volume) or re-download those candles",
        )
