"""Number formatting and parameter parsing shared by the venue route modules."""

from __future__ import annotations

import math

import numpy as np

from exchange.emulator.router import HttpError


def num(x: float) -> str:
    """Shortest decimal string that reads back to the same float, never in exponent form
    (real exchanges send plain decimals, and the downloader must store exactly what was served)."""
    s = repr(float(x))
    if "e" in s or "E" in s:
        return np.format_float_positional(float(x), trim="-")
    return s[:-2] if s.endswith(".0") else s


def fixed(x: float, decimals: int = 8) -> str:
    """Binance's padded style ("0.01000000") for filters; more decimals when 8 would lose digits."""
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
    error: HttpError,
    default: int | None = None,
) -> int | None:
    """An integer query parameter, `default` when absent, `error` raised when malformed."""
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise error from None


def candle_fields(rows: np.ndarray) -> list[tuple[int, str, str, str, str, str, str]]:
    """(ts, open, high, low, close, volume, quote volume) per candle row, formatted for the wire.

    The quote volume is not stored: it is approximated with the typical price (h + l + c) / 3.
    Works on plain Python floats (`tolist`), which is several times faster than numpy scalars.
    """
    if not len(rows):
        return []
    quote = np.round(rows[:, 5] * (rows[:, 2] + rows[:, 3] + rows[:, 4]) / 3.0, 8)
    return [
        (int(ts), num(o), num(h), num(lo), num(c), num(v), num(q))
        for (ts, o, h, lo, c, v), q in zip(rows.tolist(), quote.tolist(), strict=True)
    ]
