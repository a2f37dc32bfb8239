"""Timeframe strings ("1m", "5m", "1h", "4h", "1d", "1w") and their length in milliseconds."""

from __future__ import annotations

import difflib

from core.errors import ConfigError

_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}

# The timeframes Binance and Bitget both serve for spot klines; others are rejected early.
SUPPORTED_TIMEFRAMES = ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "12h", "1d", "1w")


def timeframe_ms(tf: str) -> int:
    """Length of one candle of `tf` in milliseconds; raises ConfigError naming close matches."""
    if tf not in SUPPORTED_TIMEFRAMES:
        close = difflib.get_close_matches(tf, SUPPORTED_TIMEFRAMES, n=3, cutoff=0.3)
        hint = f"did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(
            f"unknown timeframe {tf!r}",
            f"{hint} supported: {', '.join(SUPPORTED_TIMEFRAMES)}".strip(),
        )
    return int(tf[:-1]) * _UNIT_MS[tf[-1]]


def is_multiple(higher: str, base: str) -> bool:
    """True when one `higher` candle is made of a whole number of `base` candles."""
    return timeframe_ms(higher) % timeframe_ms(base) == 0 and timeframe_ms(higher) >= timeframe_ms(base)


def sort_timeframes(tfs: list[str]) -> list[str]:
    return sorted(set(tfs), key=timeframe_ms)
