"""The runner's candle window per pair: bootstrapped once, then extended incrementally each bar.

Only closed candles enter (the venue port drops the open one). The window keeps the last `keep_bars`
base candles in plain arrays, so appending one bar is a copy of six numbers, and hands the feature
builder a DataFrame of the newest rows only when a model needs one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.candles import COLUMNS
from core.timeframes import timeframe_ms
from exchange.port import MarketData

_FLOAT_COLS = COLUMNS[1:]


class CandleWindow:
    def __init__(self, keep_bars: int) -> None:
        self.keep_bars = max(2, keep_bars)
        self._cap = 2 * self.keep_bars
        self._ts = np.empty(self._cap, dtype=np.int64)
        self._ohlcv = np.empty((self._cap, 5), dtype=np.float64)
        self._n = 0

    def __len__(self) -> int:
        return self._n

    @property
    def last_ts(self) -> int | None:
        return int(self._ts[self._n - 1]) if self._n else None

    def extend(self, df: pd.DataFrame) -> int:
        """Append the rows newer than the last one; returns how many were new."""
        if df.empty:
            return 0
        # Plain numpy: selecting DataFrame columns by a list costs ~1 ms a call in pandas 3.
        ts = df["ts"].to_numpy(dtype=np.int64)
        vals = np.column_stack([df[c].to_numpy(dtype=np.float64) for c in _FLOAT_COLS])
        return self._extend(ts, vals)

    def extend_rows(self, rows: np.ndarray) -> int:
        """`extend` for a float64 (n, 6) array ts, o, h, l, c, v sorted by ts (`fetch_new_rows`)."""
        if not len(rows):
            return 0
        return self._extend(rows[:, 0].astype(np.int64), rows[:, 1:6])

    def _extend(self, ts: np.ndarray, vals: np.ndarray) -> int:
        last = self.last_ts
        if last is not None:
            keep = ts > last
            ts, vals = ts[keep], vals[keep]
        for start in range(0, len(ts), self.keep_bars):
            self._append(ts[start:start + self.keep_bars], vals[start:start + self.keep_bars])
        return len(ts)

    def _append(self, ts: np.ndarray, vals: np.ndarray) -> None:
        k = len(ts)
        if self._n + k > self._cap:  # keep the newest keep_bars - k rows, then append
            keep = max(0, self.keep_bars - k)
            self._ts[:keep] = self._ts[self._n - keep:self._n]
            self._ohlcv[:keep] = self._ohlcv[self._n - keep:self._n]
            self._n = keep
        self._ts[self._n:self._n + k] = ts
        self._ohlcv[self._n:self._n + k] = vals
        self._n += k

    def row(self, ts_ms: int) -> tuple[float, float, float, float, float] | None:
        i = self._index(ts_ms)
        return None if i is None else tuple(float(x) for x in self._ohlcv[i])  # type: ignore[return-value]

    def ts_after(self, ts_ms: int | None) -> list[int]:
        """Open times of the candles newer than `ts_ms` (all of them for None)."""
        ts = self._ts[: self._n]
        start = 0 if ts_ms is None else int(np.searchsorted(ts, ts_ms, side="right"))
        return [int(x) for x in ts[start:]]

    def arrays(self, upto_ts: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The last `n` candles up to and including the one opening at `upto_ts`, as (open times, (n, 5)
        open/high/low/close/volume) copies: what a policy bundle's predict takes. Not a DataFrame: building
        one per bar and pair cost ~0.4 ms in replays, only for the bundle to take it apart again."""
        i = self._index(upto_ts)
        end = (i + 1) if i is not None else 0
        start = max(0, end - n)
        return self._ts[start:end].copy(), self._ohlcv[start:end].copy()

    def _index(self, ts_ms: int) -> int | None:
        ts = self._ts[: self._n]
        i = int(np.searchsorted(ts, ts_ms))
        return i if i < self._n and ts[i] == ts_ms else None


def fetch_new_rows(venue: MarketData, pair: str, timeframe: str, since_ms: int) -> np.ndarray:
    """The closed candles from `since_ms` on as a float64 (n, 6) array ts, o, h, l, c, v: the
    venue's array form when it has one (the ccxt adapter: no DataFrame per bar), else its frame."""
    rows = getattr(venue, "fetch_candle_rows", None)
    if rows is not None:
        return np.asarray(rows(pair, timeframe, since_ms=since_ms))
    df = venue.fetch_candles(pair, timeframe, since_ms=since_ms)
    return df[list(COLUMNS)].to_numpy(dtype=np.float64) if len(df) else np.empty((0, 6))


def fetch_closed(venue: MarketData, pair: str, timeframe: str, since_ms: int, page_limit: int = 1000) -> pd.DataFrame:
    """Every closed candle from `since_ms` on (the port paginates; pages are asked until exhausted)."""
    frames = []
    tf_ms = timeframe_ms(timeframe)
    cursor = since_ms
    while True:
        df = venue.fetch_candles(pair, timeframe, since_ms=cursor, limit=page_limit)
        if df.empty:
            break
        frames.append(df)
        if len(df) < page_limit:
            break
        cursor = int(df["ts"].iloc[-1]) + tf_ms
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="int64" if c == "ts" else "float64") for c in COLUMNS})
    return pd.concat(frames, ignore_index=True).drop_duplicates("ts").sort_values("ts", ignore_index=True)
