"""Number formatting and parameter parsing shared by the venue route modules."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from exchange.emulator.router import HttpError

# Formatted numbers by value: a replay formats the same prices, quantities and candle fields over
# and over (every answer about an order repeats its price). Zero and non-finite values are not
# cached (-0.0 == 0.0 but prints "-0"; NaN never finds itself); the caches are emptied when full.
_NUM_CACHE: dict[float, str] = {}
_FIXED8_CACHE: dict[float, str] = {}
_CACHE_MAX = 4096  # a replay re-serves recent values: a small cache keeps them, and memory flat


def num(x: float) -> str:
    """Shortest decimal string that reads back to the same float, never in exponent form
    (real exchanges send plain decimals, and the downloader must store exactly what was served)."""
    x = float(x)
    if x == 0.0 and math.copysign(1.0, x) > 0:
        return "0"
    s = _NUM_CACHE.get(x)
    if s is None:
        s = _num(x)
        if x and math.isfinite(x):
            if len(_NUM_CACHE) >= _CACHE_MAX:
                _NUM_CACHE.clear()
            _NUM_CACHE[x] = s
    return s


def _num(x: float) -> str:
    s = repr(x)
    if "e" in s or "E" in s:
        return np.format_float_positional(x, trim="-")
    return s[:-2] if s.endswith(".0") else s


def fixed(x: float, decimals: int = 8) -> str:
    """Binance's padded style ("0.01000000") for filters; more decimals when 8 would lose digits."""
    if decimals != 8:
        return _fixed(x, decimals)
    if x == 0 and math.copysign(1.0, x) > 0:
        return "0.00000000"
    s = _FIXED8_CACHE.get(x)
    if s is None:
        s = _fixed(x, 8)
        if x and math.isfinite(x):
            if len(_FIXED8_CACHE) >= _CACHE_MAX:
                _FIXED8_CACHE.clear()
            _FIXED8_CACHE[x] = s
    return s


def _fixed(x: float, decimals: int) -> str:
    s = f"{x:.{decimals}f}"
    return s if float(s) == x or x == 0 else np.format_float_positional(x, trim="-")


def decimals_of(step: float) -> int:
    """0.01 -> 2, 1 -> 0, 0.00001 -> 5 (Bitget publishes precision as a count of decimals)."""
    if step >= 1:
        return 0
    return max(0, round(-math.log10(step)))


def int_param(
    params: dict[str, str],
    name: str,
    error: HttpError | Callable[[], HttpError],
    default: int | None = None,
) -> int | None:
    """An integer query parameter, `default` when absent, `error` raised when malformed (pass a
    function making it, and the error is built only when needed)."""
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise (error if isinstance(error, HttpError) else error()) from None


def candle_fields(rows: np.ndarray) -> list[tuple[int, str, str, str, str, str, str]]:
    """(ts, open, high, low, close, volume, quote volume) per candle row, formatted for the wire.

    The quote volume is not stored: it is approximated with the typical price (h + l + c) / 3,
    rounded as `np.round(..., 8)` rounds. Works on plain Python floats (`tolist`), which is several
    times faster than numpy scalars; a few rows (every request of a replay) skip numpy altogether.
    """
    if not len(rows):
        return []
    if len(rows) <= _SMALL_ROWS:
        return [
            (int(ts), num(o), num(h), num(lo), num(c), num(v), num(_round8(v * (h + lo + c) / 3.0)))
            for ts, o, h, lo, c, v in rows.tolist()
        ]
    quote = np.round(rows[:, 5] * (rows[:, 2] + rows[:, 3] + rows[:, 4]) / 3.0, 8)
    return [
        (int(ts), num(o), num(h), num(lo), num(c), num(v), num(q))
        for (ts, o, h, lo, c, v), q in zip(rows.tolist(), quote.tolist(), strict=True)
    ]


# Up to this many rows, per-row Python beats numpy's per-call overhead.
_SMALL_ROWS = 32


def _round8(x: float) -> float:
    """`np.round(x, 8)` for one float, as numpy computes it: rint(x * 1e8) / 1e8 (half to even)."""
    if not math.isfinite(x):
        return x
    scaled = x * 1e8
    if not math.isfinite(scaled):
        return scaled / 1e8
    r = float(round(scaled))  # Python's round of a float: half to even, like rint
    return math.copysign(r, scaled) / 1e8 if r == 0 else r / 1e8
