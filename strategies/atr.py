"""Streaming ATR for the ATR-sized dynamic grid range (`grid.range_atr_mult`, `grid.atr_bars`).

The engine keeps the true ranges of the closed bars in a ring (`grid[:, G_TR]`, MAX_ATR_BARS rows) and
the last close (`F_PREV_CLOSE`). At each close, before the decision, the bar's true range is recorded:
max(high - low, |high - previous close|, |low - previous close|), or high - low for the first bar.
When a grid arms, ATR = the simple mean of the last n true ranges up to and including the arming bar
(n = `atr_bars`; fewer while fewer bars have closed). Nothing after the arming bar enters: no lookahead.

The ring is written only while some regime of the policy uses ATR (`atr_tracked`): a policy without
it pays one store per bar (the last close) and its state stays as small as before.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from core.market_rules import R_TICK
from strategies.layout import F_PREV_CLOSE, G_TR, I_ATR_N, MAX_ATR_BARS, P_G_ATR_MULT

# The half-width k x ATR is clamped to [2 x (levels - 1) ticks, MAX_HALF_WIDTH x close]: levels stay at
# least two ticks apart (also geometric ones, at the bottom) and the range's bottom stays above 0.
MAX_HALF_WIDTH = 0.5


@nb.njit(cache=True)
def atr_tracked(params: np.ndarray) -> bool:
    """True when some regime's grid sizes its range by ATR (the ring must be kept)."""
    for r in range(params.shape[0]):
        if params[r, P_G_ATR_MULT] > 0.0:
            return True
    return False


@nb.njit(cache=True, inline="always")
def atr_push(sf: np.ndarray, si: np.ndarray, grid: np.ndarray, high: float, low: float, close: float,
             track: bool) -> None:
    """Record a closed bar: its true range (when tracked) and its close."""
    if track:
        prev = sf[F_PREV_CLOSE]
        tr = high - low
        if prev == prev:  # not nan: a previous bar exists
            tr = max(tr, abs(high - prev), abs(low - prev))
        n = si[I_ATR_N]
        grid[n % MAX_ATR_BARS, G_TR] = tr
        si[I_ATR_N] = n + 1
    sf[F_PREV_CLOSE] = close


@nb.njit(cache=True)
def atr_mean(si: np.ndarray, grid: np.ndarray, n_bars: int) -> float:
    """Mean true range of the last min(n_bars, bars recorded) bars, summed oldest first; 0 if none."""
    end = si[I_ATR_N]
    m = min(n_bars, end, MAX_ATR_BARS)
    if m <= 0:
        return 0.0
    total = 0.0
    for j in range(end - m, end):
        total += grid[j % MAX_ATR_BARS, G_TR]
    return total / m


@nb.njit(cache=True)
def atr_half_width(atr: float, mult: float, close: float, levels: int, rules: np.ndarray) -> float:
    """k x ATR, clamped (see MAX_HALF_WIDTH): the grid's range is close -/+ this at arming."""
    w = max(mult * atr, 2.0 * rules[R_TICK] * (levels - 1))
    return min(w, MAX_HALF_WIDTH * close)
