"""Quiet bars in bulk: the simulator's loop consumes a run of bars that change nothing but counters.

A bar is quiet when it reaches no resting order (its low stays above the highest buy, its high below
the lowest sell, no market order waits) and its close is idle (`decide.close_is_idle`: nothing dirty,
no timer due, the close inside the quiet band, the same UTC day, no risk limit reached, no regime
candidate). Such a bar only advances the bar counter, the last equity, the equity peak, the previous
close (and the ATR ring, when a regime uses it) and the running statistics. `quiet_run` tests those
conditions with the state held in local scalars, hoisted out of the loop, and writes the state back
once at the end of the run: the same values, in a few nanoseconds a bar instead of dozens. The first
bar that is not quiet goes through the full step (fill_bar, on_close); the per-bar API test checks
that both paths end in bit-identical states.
"""

from __future__ import annotations

import numpy as np

from strategies.atr import atr_push
from strategies.jit import engine_jit
from strategies.layout import (
    F_BAND_HI,
    F_BAND_LO,
    F_CASH,
    F_DAY_START_EQ,
    F_DUST,
    F_EQ_PEAK,
    F_INV,
    F_INV_COST,
    F_LAST_EQ,
    F_MAX_BUY,
    F_MIN_SELL,
    F_PREV_CLOSE,
    I_ACTIVE,
    I_BAR,
    I_CAND,
    I_DAY_END_TS,
    I_DAY_PAUSED,
    I_DIRTY,
    I_HAS_MARKET,
    I_KILLED,
    I_N_ORDERS,
    I_NEXT_EVENT_BAR,
    S_DAILY_LOSS,
    S_MAX_DD,
    S_MIN_PROB,
)
from strategies.loopstats import stats_step


@engine_jit(inline="always")
def quiet_run(i: int, ts: np.ndarray, h: np.ndarray, l: np.ndarray, c: np.ndarray,  # noqa: E741
              regimes: np.ndarray, probs: np.ndarray, sf: np.ndarray, si: np.ndarray, grid: np.ndarray,
              settings: np.ndarray, track_atr: bool, st: tuple, record: bool,  # type: ignore[type-arg]
              equity: np.ndarray, inv_out: np.ndarray, active_out: np.ndarray) -> tuple[int, tuple]:  # type: ignore[type-arg]
    """Consume the quiet bars from bar `i` on; returns the first bar that is not quiet (or the end)
    and the statistics with the consumed bars in them."""
    n_orders = si[I_N_ORDERS]
    if si[I_DIRTY] != 0 or si[I_CAND] != -1 or (n_orders > 0 and si[I_HAS_MARKET] == 1):
        return i, st
    bar0 = si[I_BAR]
    # close_is_idle wants bar + 1 < next_event_bar, and the bar counter grows by one a bar
    end = min(ts.shape[0], i + (si[I_NEXT_EVENT_BAR] - 1 - bar0))
    max_buy = sf[F_MAX_BUY] if n_orders > 0 else -np.inf
    min_sell = sf[F_MIN_SELL] if n_orders > 0 else np.inf
    band_lo, band_hi, day_end = sf[F_BAND_LO], sf[F_BAND_HI], si[I_DAY_END_TS]
    active, min_prob = si[I_ACTIVE], settings[S_MIN_PROB]
    cash, inv, inv_cost = sf[F_CASH], sf[F_INV], sf[F_INV_COST]
    held = inv - sf[F_DUST]
    peak = sf[F_EQ_PEAK]
    max_dd, daily = settings[S_MAX_DD], settings[S_DAILY_LOSS]
    dd_on, dd_keep = max_dd > 0.0 and si[I_KILLED] == 0, 1.0 - max_dd
    day_on, day_floor = daily > 0.0 and si[I_DAY_PAUSED] == 0, sf[F_DAY_START_EQ] * (1.0 - daily)
    has_reg, has_prob = regimes.shape[0] > 0, probs.shape[0] > 0
    start, eq = i, 0.0
    while i < end:
        k = np.uint64(i)  # an unsigned index: no negative-index wraparound test per access
        close = c[k]
        if l[k] <= max_buy or h[k] >= min_sell or not (band_lo < close <= band_hi) or ts[k] >= day_end:
            break
        raw = regimes[k] if has_reg else 0
        prob = probs[k] if has_prob else 1.0
        if not (raw < 0 or raw == active or prob < min_prob):
            break
        eq = cash + inv * close
        if (dd_on and eq <= max(peak, eq) * dd_keep) or (day_on and eq <= day_floor):
            break
        if track_atr:
            atr_push(sf, si, grid, h[i], l[i], close, True)
        if eq > peak:
            peak = eq
        st = stats_step(st, eq, cash, inv, inv_cost, held * close, close)
        if record:
            equity[k] = eq
            inv_out[k] = inv
            active_out[k] = active
        i += 1
    if i > start:
        si[I_BAR] = bar0 + (i - start)
        sf[F_LAST_EQ] = eq
        sf[F_EQ_PEAK] = peak
        sf[F_PREV_CLOSE] = c[i - 1]
    return i, st
