"""Higher timeframes from the base timeframe, closed candles only, vectorised with numpy.

A bucket of `to_tf` is emitted only when it is complete: every one of its `to_tf / from_tf` base
candles is present. So:
- a partial first or last bucket (the data starts mid-hour, or the last hour is still running) is
  dropped, never emitted half-built;
- a bucket with a hole (an exchange outage inside it) is dropped too, and shows up as a gap of the
  higher timeframe, which the validation report then counts. Binance itself emits such a bucket from
  the candles it has (e.g. BTC/USDT 1h 2023-03-24 12:00 during the outage); we prefer a visible gap
  to a candle whose range and volume silently cover only part of its hour.

Open is the first base open, close the last base close, high the max, low the min, volume the sum.
Exchanges report volume as a decimal with at most 8 places; the float sum of such decimals carries
binary noise in the last bits, so the sum is rounded back to 8 places (where the float has the
precision for it). That makes 5m -> 1h equal Binance's own 1h candles bit for bit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.candles import COLUMNS, empty_candles, grid_origin_ms
from core.errors import ConfigError, DataError
from core.timeframes import timeframe_ms

# Above this a float has no room for 8 decimals (2**53 / 1e8); the sum is kept as it is.
_ROUNDABLE_VOLUME = 2**53 / 1e8
_VOLUME_DECIMALS = 8


def resample(df: pd.DataFrame, from_tf: str, to_tf: str) -> pd.DataFrame:
    """Aggregate validated `from_tf` candles (the candle contract) into complete `to_tf` candles."""
    from_ms, to_ms = timeframe_ms(from_tf), timeframe_ms(to_tf)
    if to_ms % from_ms or (grid_origin_ms(to_tf) - grid_origin_ms(from_tf)) % from_ms:
        raise ConfigError(
            f"cannot build {to_tf} candles from {from_tf}",
            "the target timeframe must be a whole multiple of the source timeframe",
        )
    ts = df["ts"].to_numpy()
    if not len(ts):
        return empty_candles()
    _check_contract(ts, from_tf, from_ms)
    if to_ms == from_ms:
        return df.loc[:, list(COLUMNS)].reset_index(drop=True)
    origin = grid_origin_ms(to_tf)
    bucket = (ts - origin) // to_ms
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    ends = np.r_[starts[1:], len(ts)]
    complete = (ends - starts) == to_ms // from_ms
    # Sorted, unique, on-grid input: n candles in one bucket means all of them are there.
    first, last = starts[complete], ends[complete] - 1

    def agg(col: str, ufunc: np.ufunc) -> np.ndarray:
        return ufunc.reduceat(df[col].to_numpy(), starts)[complete]

    volume = agg("volume", np.add)
    roundable = np.abs(volume) < _ROUNDABLE_VOLUME
    volume = np.where(roundable, np.round(volume, _VOLUME_DECIMALS), volume)
    return pd.DataFrame(
        {
            "ts": bucket[first] * to_ms + origin,
            "open": df["open"].to_numpy()[first],
            "high": agg("high", np.maximum),
            "low": agg("low", np.minimum),
            "close": df["close"].to_numpy()[last],
            "volume": volume,
        }
    )


def resample_many(df: pd.DataFrame, from_tf: str, to_tfs: list[str]) -> dict[str, pd.DataFrame]:
    """`{tf: resample(df, from_tf, tf)}` for each target timeframe."""
    return {tf: resample(df, from_tf, tf) for tf in to_tfs}


def _check_contract(ts: np.ndarray, from_tf: str, from_ms: int) -> None:
    # Cheap guards for the two properties the bucket count relies on; full checks are in validate_candles.
    if len(ts) > 1 and not np.all(ts[1:] > ts[:-1]):
        raise DataError(f"{from_tf} candles to resample are not sorted and unique", "validate them first (core.candles)")
    if np.any((ts - grid_origin_ms(from_tf)) % from_ms):
        raise DataError(f"{from_tf} candles to resample are off the {from_tf} grid", "validate them first (core.candles)")
