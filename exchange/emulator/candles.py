"""Candles the emulator can serve, cut at the virtual clock so nothing from the future leaks.

Stored timeframes are served as they are; other timeframes are aggregated on request from the
finest stored timeframe that divides them (1w buckets start on Monday 00:00 UTC, as on Binance).

The still-open candle (open time <= now < close time) is served **partial**, built only from what
was known at `now`: the source candles that had closed, plus the in-progress source candle reduced
to its open price (open = high = low = close, volume 0). So the emulator never leaks even the
intra-candle future; clients (the downloader, the live runner) must drop that last candle, exactly
as they must on the real exchanges.
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
    return int(bucket_start(np.array([ts_ms], dtype=np.int64), tf_ms)[0])


@dataclass(frozen=True)
class Series:
    """One stored timeframe of one symbol as a float64 (n, 6) array: ts, o, h, l, c, v."""

    tf: str
    tf_ms: int
    rows: np.ndarray

    @property
    def ts(self) -> np.ndarray:
        return self.rows[:, TS].astype(np.int64)


class CandleBook:
    """Candles by symbol id ("BTCUSDT") and timeframe; thread-safe for concurrent readers."""

    def __init__(self) -> None:
        self._series: dict[str, dict[str, Series]] = {}
        self._ts: dict[tuple[str, str], np.ndarray] = {}
        self._lock = threading.Lock()

    def add(self, symbol_id: str, tf: str, df: pd.DataFrame) -> None:
        """Add (or replace) candles: the shared contract frame (ts int64 ms + float64 OHLCV)."""
        frame = df.sort_values("ts").drop_duplicates("ts", keep="last")
        cols = ["ts", "open", "high", "low", "close", "volume"]
        rows = frame[cols].to_numpy(dtype=np.float64, copy=True)
        series = Series(tf, timeframe_ms(tf), rows)
        with self._lock:
            self._series.setdefault(symbol_id, {})[tf] = series
            self._ts[(symbol_id, tf)] = frame["ts"].to_numpy(dtype=np.int64)

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
        want_ms = timeframe_ms(tf)
        with self._lock:
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
        src = self.source_for(symbol_id, tf)
        if src is None or limit <= 0:
            return np.empty((0, 6))
        tf_ms = timeframe_ms(tf)
        hi_ms = now_ms if end_ms is None else min(end_ms, now_ms)
        lo_ms = -(2**62) if start_ms is None else start_ms
        if lo_ms > hi_ms:
            return np.empty((0, 6))
        ts = self._ts[(symbol_id, src.tf)]
        # Source rows are cut by target bucket (and by now), never mid-bucket by the end bound.
        first = int(np.searchsorted(ts, _bucket(lo_ms, tf_ms), "left"))
        last = int(np.searchsorted(ts, _bucket(hi_ms, tf_ms) + tf_ms - 1, "right"))
        # A target candle holds at most `ratio` source rows, so this many always make `limit`
        # candles when the data has them, gaps or not.
        span = (limit + 1) * (tf_ms // src.tf_ms)
        first, last = (max(first, last - span), last) if newest else (first, min(last, first + span))
        rows = _cut_at_now(src.rows[first:last], src.tf_ms, now_ms)
        if src.tf_ms != tf_ms:
            rows = _aggregate(rows, tf_ms)
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
