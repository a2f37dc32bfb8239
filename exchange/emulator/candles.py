"""Candles the emulator can serve, cut at the virtual clock so nothing from the future leaks.

Stored timeframes are served as they are; other timeframes are aggregated on request from the
finest stored timeframe that divides them (1w buckets start on Monday 00:00 UTC, as on Binance).

The still-open candle (open time <= now < close time) is served **partial**, built only from what
was known at `now`: the source candles that had closed, plus the in-progress source candle reduced
to its open price (open = high = low = close, volume 0). So the emulator never leaks even the
intra-candle future; clients (the downloader, the live runner) must drop that last candle, exactly
as they must on the real exchanges.

Every candle request of a replay asks for a few candles of a stored timeframe, so that case is cut
straight from the stored arrays by two binary searches (`View`, resolved once per symbol and
timeframe until candles are added); aggregated timeframes take the general path.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.timeframes import timeframe_ms

_WEEK_MS = 604_800_000
# 1970-01-01 was a Thursday; weeks on Binance and Bitget start on Monday (1970-01-05).
_WEEK_ANCHOR_MS = 4 * 86_400_000

# Row layout of every array this module returns.
TS, OPEN, HIGH, LOW, CLOSE, VOLUME = range(6)


def bucket_start(ts_ms: np.ndarray, tf_ms: int) -> np.ndarray:
    anchor = _WEEK_ANCHOR_MS if tf_ms == _WEEK_MS else 0
    return (ts_ms - anchor) // tf_ms * tf_ms + anchor


def _bucket(ts_ms: int, tf_ms: int) -> int:
    """`bucket_start` of one time, in Python ints (numpy's // floors like Python's)."""
    anchor = _WEEK_ANCHOR_MS if tf_ms == _WEEK_MS else 0
    return (ts_ms - anchor) // tf_ms * tf_ms + anchor


@dataclass(frozen=True)
class Series:
    """One stored timeframe of one symbol as a float64 (n, 6) array: ts, o, h, l, c, v."""

    tf: str
    tf_ms: int
    rows: np.ndarray

    @property
    def ts(self) -> np.ndarray:
        return self.rows[:, TS].astype(np.int64)


@dataclass(frozen=True)
class View:
    """How one (symbol, timeframe) is served: its source series, the source's open times (int64)
    and the requested timeframe's length. `stored` when the source is the timeframe itself."""

    src: Series
    ts: np.ndarray
    tf_ms: int

    @property
    def stored(self) -> bool:
        return self.src.tf_ms == self.tf_ms


class CandleBook:
    """Candles by symbol id ("BTCUSDT") and timeframe; thread-safe for concurrent readers."""

    def __init__(self) -> None:
        self._series: dict[str, dict[str, Series]] = {}
        self._ts: dict[tuple[str, str], np.ndarray] = {}
        self._lock = threading.Lock()
        # (symbol, timeframe) -> View or None (nothing to serve it from); emptied by `add`.
        self._views: dict[tuple[str, str], View | None] = {}
        self._version = 0

    @property
    def version(self) -> int:
        """Changes whenever candles are added or replaced (callers key their caches on it)."""
        return self._version

    def add(self, symbol_id: str, tf: str, df: pd.DataFrame) -> None:
        """Add (or replace) candles: the shared contract frame (ts int64 ms + float64 OHLCV)."""
        frame = df.sort_values("ts").drop_duplicates("ts", keep="last")
        cols = ["ts", "open", "high", "low", "close", "volume"]
        rows = frame[cols].to_numpy(dtype=np.float64, copy=True)
        series = Series(tf, timeframe_ms(tf), rows)
        with self._lock:
            self._series.setdefault(symbol_id, {})[tf] = series
            self._ts[(symbol_id, tf)] = frame["ts"].to_numpy(dtype=np.int64)
            self._views = {}
            self._version += 1

    def view(self, symbol_id: str, tf: str) -> View | None:
        """The source `tf` is served from (see `source_for`), resolved once until candles change."""
        key = (symbol_id, tf)
        views = self._views
        if key in views:
            return views[key]
        with self._lock:
            if key not in self._views:
                src = self._source_locked(symbol_id, tf)
                self._views[key] = (
                    None if src is None else View(src, self._ts[(symbol_id, src.tf)], timeframe_ms(tf))
                )
            return self._views[key]

    def symbols(self) -> list[str]:
        with self._lock:
            return sorted(self._series)

    def stored_timeframes(self, symbol_id: str) -> list[str]:
        with self._lock:
            return sorted(self._series.get(symbol_id, {}), key=timeframe_ms)

    def span_ms(self, symbol_id: str | None = None) -> tuple[int, int] | None:
        """(first open time, last close time) over the stored data, or None when empty."""
        with self._lock:
            keys = [k for k in self._ts if symbol_id is None or k[0] == symbol_id]
            spans = [
                (int(self._ts[k][0]), int(self._ts[k][-1]) + self._series[k[0]][k[1]].tf_ms)
                for k in keys
                if len(self._ts[k])
            ]
        if not spans:
            return None
        return min(s[0] for s in spans), max(s[1] for s in spans)

    def source_for(self, symbol_id: str, tf: str) -> Series | None:
        """The stored series `tf` is served from: itself, else the finest one dividing it."""
        with self._lock:
            return self._source_locked(symbol_id, tf)

    def _source_locked(self, symbol_id: str, tf: str) -> Series | None:
        want_ms = timeframe_ms(tf)
        stored = self._series.get(symbol_id, {})
        if tf in stored:
            return stored[tf]
        fits = [s for s in stored.values() if want_ms % s.tf_ms == 0 and s.tf_ms < want_ms]
        return min(fits, key=lambda s: s.tf_ms) if fits else None

    def window(
        self,
        symbol_id: str,
        tf: str,
        now_ms: int,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = 500,
        newest: bool = False,
    ) -> np.ndarray:
        """Candles of `tf` with start_ms <= open time <= min(end_ms, now_ms), at most `limit`.

        `newest=False` takes the first `limit` from start (Binance with startTime), `newest=True`
        the last `limit` before the end (Binance without startTime, Bitget). The candle open at
        `now_ms`, if any, is partial (see the module docstring).
        """
        view = self.view(symbol_id, tf)
        if view is None or limit <= 0:
            return np.empty((0, 6))
        hi_ms = now_ms if end_ms is None else min(end_ms, now_ms)
        lo_ms = -(2**62) if start_ms is None else start_ms
        if lo_ms > hi_ms:
            return np.empty((0, 6))
        if view.stored:
            return _stored_window(view, now_ms, lo_ms, hi_ms, limit, newest)
        src, ts, tf_ms = view.src, view.ts, view.tf_ms
        # Source rows are cut by target bucket (and by now), never mid-bucket by the end bound.
        first = int(ts.searchsorted(_bucket(lo_ms, tf_ms), "left"))
        last = int(ts.searchsorted(_bucket(hi_ms, tf_ms) + tf_ms - 1, "right"))
        # A target candle holds at most `ratio` source rows, so this many always make `limit`
        # candles when the data has them, gaps or not.
        span = (limit + 1) * (tf_ms // src.tf_ms)
        first, last = (max(first, last - span), last) if newest else (first, min(last, first + span))
        rows = _aggregate(_cut_at_now(src.rows[first:last], src.tf_ms, now_ms), tf_ms)
        rows = rows[(rows[:, TS] >= lo_ms) & (rows[:, TS] <= hi_ms)]
        return rows[-limit:] if newest else rows[:limit]

    def last_price(self, symbol_id: str, now_ms: int) -> float | None:
        """Price known at `now_ms`: the close of the latest visible finest candle (or its open)."""
        with self._lock:
            stored = list(self._series.get(symbol_id, {}).values())
        if not stored:
            return None
        src = min(stored, key=lambda s: s.tf_ms)
        rows = self.window(symbol_id, src.tf, now_ms, limit=1, newest=True)
        return float(rows[-1, CLOSE]) if len(rows) else None


def _stored_window(view: View, now_ms: int, lo_ms: int, hi_ms: int, limit: int, newest: bool) -> np.ndarray:
    """Rows of a stored timeframe with lo_ms <= open time <= hi_ms (<= now_ms), `limit` of them.

    The same rows as cutting by bucket and by now, as the general path does, for any series whose
    candles are at least one timeframe apart (every series on its timeframe's grid): then only
    the last row served can be the one open at `now`."""
    ts = view.ts
    first = int(ts.searchsorted(lo_ms, "left"))
    last = int(ts.searchsorted(hi_ms, "right"))
    first, last = (max(first, last - limit), last) if newest else (first, min(last, first + limit))
    rows = view.src.rows[first:last]
    if first < last and int(ts[last - 1]) + view.tf_ms > now_ms:
        rows = rows.copy()
        rows[-1, HIGH : CLOSE + 1] = rows[-1, OPEN]
        rows[-1, VOLUME] = 0.0
    return rows


def _cut_at_now(rows: np.ndarray, src_tf_ms: int, now_ms: int) -> np.ndarray:
    """Drop rows opening after now; reduce the in-progress one to its open price, volume 0."""
    rows = rows[rows[:, TS] <= now_ms]
    if len(rows) and rows[-1, TS] + src_tf_ms > now_ms:
        rows = rows.copy()
        o = rows[-1, OPEN]
        rows[-1, HIGH : CLOSE + 1] = o
        rows[-1, VOLUME] = 0.0
    return rows


def _aggregate(rows: np.ndarray, tf_ms: int) -> np.ndarray:
    if not len(rows):
        return rows
    buckets = bucket_start(rows[:, TS].astype(np.int64), tf_ms)
    starts = np.flatnonzero(np.r_[True, buckets[1:] != buckets[:-1]])
    ends = np.r_[starts[1:], len(rows)] - 1
    out = np.empty((len(starts), 6))
    out[:, TS] = buckets[starts]
    out[:, OPEN] = rows[starts, OPEN]
    out[:, HIGH] = np.maximum.reduceat(rows[:, HIGH], starts)
    out[:, LOW] = np.minimum.reduceat(rows[:, LOW], starts)
    out[:, CLOSE] = rows[ends, CLOSE]
    out[:, VOLUME] = np.add.reduceat(rows[:, VOLUME], starts)
    return out
