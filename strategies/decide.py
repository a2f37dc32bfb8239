"""The decision at a bar's close: risk flags, regime hysteresis and switch, then the desired orders.

`on_close` is the one function both callers run once per closed bar, after that bar's fills have
been booked: the simulator in its numba loop, the live runner with the fills the exchange reported.
It returns True when the desired set was re-decided (the table in `orders[:si[I_N_ORDERS]]`).

Regime switch at a close (the new regime passed the hysteresis):
1. Entry orders are cancelled: the whole set is re-decided below, without the old engine's entries.
2. Held inventory keeps its exits: each holding grid cell becomes a legacy exit at the sell price of
   the level above it; an open DCA position becomes a legacy exit at its take-profit price (keeping
   its stop-loss price, if any; a trailing take-profit falls back to the plain take-profit limit).
3. The new regime's engine arms at this close (a dynamic grid centres on it) and its orders rest
   from the next bar. A regime whose engine is "none" places no entries: it pauses the pair.
"""

from __future__ import annotations

import numpy as np

from core.market_rules import OK, check_rules
from strategies.atr import atr_push, atr_tracked
from strategies.book import finish_book, narrow_band, push_order
from strategies.buckets import legacy_add, legacy_cost, to_dust
from strategies.dca import average_entry, dca_decide, dca_reset, take_profit_price
from strategies.fills import inventory_cost
from strategies.grid import grid_arm, grid_decide
from strategies.jit import engine_jit
from strategies.layout import (
    ENGINE_DCA,
    ENGINE_GRID,
    ENGINE_NONE,
    F_BAND_HI,
    F_BAND_LO,
    F_CASH,
    F_D_COST,
    F_D_CYCLE_PNL,
    F_D_POS,
    F_INV,
    F_INV_COST,
    F_LEG_COST,
    F_LEG_MIN_SELL,
    F_LEG_STOP,
    G_COST,
    G_PNL,
    G_QTY,
    G_SELL_PX,
    I_ACTIVE,
    I_BAR,
    I_CAND,
    I_CAND_N,
    I_D_COOLDOWN_UNTIL,
    I_D_IN_CYCLE,
    I_DIRTY,
    I_ENGINE,
    I_ENTRIES_OK,
    I_EPOCH,
    I_G_CELLS,
    I_KILLED,
    I_LEG_DIRTY,
    I_LEG_HAS_MARKET,
    I_N_DECISIONS,
    I_N_LEG_ORDERS,
    I_N_LEGACY,
    I_N_REJECTED,
    I_N_SWITCHES,
    I_NEXT_EVENT_BAR,
    KIND_KILL,
    KIND_LEGACY_EXIT,
    KIND_LEGACY_SELL,
    P_D_SL_PCT,
    P_ENGINE,
    S_MARKET_BUFFER,
    S_MIN_DWELL,
    S_MIN_PROB,
    S_SELL_ON_KILL,
    X_COST,
    X_PNL,
    X_PRICE,
    X_QTY,
    X_STOP,
)
from strategies.regime import hysteresis
from strategies.risk import entry_budget, risk_on_close
from strategies.rounding import lot_amount

NO_EVENT = 1 << 62


@engine_jit()
def _keep_exits(sf: np.ndarray, si: np.ndarray, grid: np.ndarray, legacy: np.ndarray, params: np.ndarray,
                rules: np.ndarray) -> None:
    """Move the old engine's holdings, with their exit prices, into the legacy exits."""
    if si[I_ENGINE] == ENGINE_GRID:
        for k in range(si[I_G_CELLS]):
            if grid[k, G_QTY] > 0.0:
                legacy_add(sf, si, legacy, grid[k, G_QTY], grid[k, G_COST], grid[k + 1, G_SELL_PX], 0.0, grid[k, G_PNL])
                grid[k, G_QTY] = 0.0
                grid[k, G_COST] = 0.0
                grid[k, G_PNL] = 0.0
    elif si[I_ENGINE] == ENGINE_DCA and si[I_D_IN_CYCLE] == 1 and sf[F_D_POS] > 0.0:
        p = params[si[I_ACTIVE]]
        price = take_profit_price(sf, p, rules)
        stop = 0.0
        if p[P_D_SL_PCT] > 0.0:
            stop = average_entry(sf) * (1.0 - p[P_D_SL_PCT] / 100.0)
        legacy_add(sf, si, legacy, sf[F_D_POS], sf[F_D_COST], price, stop, sf[F_D_CYCLE_PNL])
    dca_reset(sf, si)
    sf[F_D_CYCLE_PNL] = 0.0


@engine_jit()
def switch_regime(sf: np.ndarray, si: np.ndarray, grid: np.ndarray, legacy: np.ndarray, params: np.ndarray,
                  rules: np.ndarray, new_active: int, close: float) -> None:
    if si[I_ACTIVE] >= 0:
        si[I_N_SWITCHES] += 1
    _keep_exits(sf, si, grid, legacy, params, rules)
    si[I_G_CELLS] = 0
    si[I_ACTIVE] = new_active
    si[I_ENGINE] = int(params[new_active, P_ENGINE]) if new_active >= 0 else ENGINE_NONE
    si[I_EPOCH] += 1
    si[I_D_COOLDOWN_UNTIL] = 0
    if si[I_ENGINE] == ENGINE_GRID:
        grid_arm(sf, si, grid, params[new_active], close, rules)
    si[I_DIRTY] = 1


@engine_jit()
def _legacy_orders(sf: np.ndarray, si: np.ndarray, legacy: np.ndarray, orders: np.ndarray, n: int,
                   rules: np.ndarray, close: float, epoch: int) -> int:
    """The legacy exits' orders; also records the highest stop still resting (F_LEG_STOP), the
    lowest limit (F_LEG_MIN_SELL), whether one is a market order, and their cost (F_LEG_COST)."""
    sf[F_LEG_STOP], sf[F_LEG_MIN_SELL], si[I_LEG_HAS_MARKET] = -np.inf, np.inf, 0
    for j in range(si[I_N_LEGACY]):
        if legacy[j, X_QTY] <= 0.0:
            continue
        amount = lot_amount(legacy[j, X_QTY], rules)
        stop = legacy[j, X_STOP]
        market = stop > 0.0 and close <= stop
        price = close if market else legacy[j, X_PRICE]
        if check_rules(price, amount, rules) != OK:
            si[I_N_REJECTED] += 1
            to_dust(sf, legacy[j, X_QTY])
            legacy[j, X_QTY] = 0.0
            legacy[j, X_COST] = 0.0
            legacy[j, X_PNL] = 0.0
            continue
        kind = KIND_LEGACY_EXIT if market else KIND_LEGACY_SELL
        n = push_order(orders, n, price, amount, -1.0, kind, j, market, epoch, 0.0)
        if market:
            si[I_LEG_HAS_MARKET] = 1
        else:
            sf[F_LEG_MIN_SELL] = min(sf[F_LEG_MIN_SELL], price)
            if stop > 0.0 and stop > sf[F_LEG_STOP]:
                sf[F_LEG_STOP] = stop
    sf[F_LEG_COST] = legacy_cost(si, legacy)
    return n


@engine_jit()
def rebuild(sf: np.ndarray, si: np.ndarray, grid: np.ndarray, legacy: np.ndarray, orders: np.ndarray,
            params: np.ndarray, rules: np.ndarray, settings: np.ndarray, close: float) -> None:
    """Decide the whole desired set from scratch; also sets the quiet band and the next timer."""
    sf[F_BAND_LO] = -np.inf
    sf[F_BAND_HI] = np.inf
    si[I_NEXT_EVENT_BAR] = NO_EVENT
    epoch, n = si[I_EPOCH], 0
    if si[I_KILLED] == 1 and settings[S_SELL_ON_KILL] > 0.5:
        si[I_LEG_DIRTY] = 1  # the whole table is replaced: no legacy prefix
        si[I_N_LEG_ORDERS], si[I_LEG_HAS_MARKET], sf[F_LEG_MIN_SELL] = 0, 0, np.inf
        amount = lot_amount(sf[F_INV], rules)
        if amount > 0.0 and check_rules(close, amount, rules) == OK:
            n = push_order(orders, n, close, amount, -1.0, KIND_KILL, 0, True, epoch, 0.0)
        elif amount > 0.0:
            si[I_NEXT_EVENT_BAR] = si[I_BAR] + 1  # below the venue's minimum at this close: retry
    else:
        # Legacy exits change only by their own fills, at a switch or when a stop is reached: their
        # orders stay at the head of the table between decisions (the same result, rebuilt or not).
        if si[I_LEG_DIRTY] == 1 or close <= sf[F_LEG_STOP]:
            n = _legacy_orders(sf, si, legacy, orders, 0, rules, close, epoch)
            si[I_N_LEG_ORDERS] = n
            si[I_LEG_DIRTY] = 0
            sf[F_INV_COST] = inventory_cost(sf, si, grid, legacy)  # a holding may have become dust
        n = si[I_N_LEG_ORDERS]
        narrow_band(sf, sf[F_LEG_STOP], np.inf)
        row = si[I_ACTIVE]
        entries_ok = si[I_ENTRIES_OK] == 1 and row >= 0
        budget = entry_budget(sf, settings)
        if si[I_ENGINE] == ENGINE_GRID:
            n = grid_decide(sf, si, grid, orders, n, params[row], rules, close, entries_ok, budget, epoch)
        elif si[I_ENGINE] == ENGINE_DCA:
            n = dca_decide(sf, si, orders, n, params[row], rules, close, entries_ok, budget,
                           settings[S_MARKET_BUFFER], epoch)
    sf[F_INV_COST] = inventory_cost(sf, si, grid, legacy)
    finish_book(sf, si, orders, si[I_N_LEG_ORDERS], n)
    si[I_DIRTY] = 0
    si[I_N_DECISIONS] += 1


@engine_jit(inline="always")
def close_is_idle(bar: int, next_event_bar: int, dirty: int, close: float, band_lo: float, band_hi: float,
                  equity: float, peak: float, killed: int, max_dd: float, ts_ms: int, day_end_ts: int,
                  day_paused: int, day_start_eq: float, daily: float, raw: int, prob: float, active: int,
                  cand: int, min_prob: float) -> bool:
    """True when `on_close` would change nothing but the bar counter, the last equity and the peak:
    no fill, no timer, close inside the quiet band, no new UTC day, no risk limit hit, no regime
    candidate. Scalars only, so the simulator's loop can test it without touching the arrays'
    reference counts (which costs more than the whole test); `on_close` itself stays the one rule."""
    if dirty != 0 or bar + 1 >= next_event_bar or not (band_lo < close <= band_hi):
        return False
    if ts_ms >= day_end_ts or cand != -1 or not (raw < 0 or raw == active or prob < min_prob):
        return False
    if max_dd > 0.0 and killed == 0 and equity <= max(peak, equity) * (1.0 - max_dd):
        return False
    return not (daily > 0.0 and day_paused == 0 and equity <= day_start_eq * (1.0 - daily))


@engine_jit(inline="always")
def on_close(sf: np.ndarray, si: np.ndarray, grid: np.ndarray, legacy: np.ndarray, orders: np.ndarray,
             params: np.ndarray, rules: np.ndarray, settings: np.ndarray, ts_ms: int, close: float,
             raw_regime: int, prob: float, high: float, low: float) -> bool:
    """One closed bar (its fills already booked): risk, hysteresis, switch, and the desired orders.
    `high`/`low` feed the ATR of an ATR-sized grid range (strategies.atr)."""
    atr_push(sf, si, grid, high, low, close, atr_tracked(params))
    si[I_BAR] += 1
    equity = sf[F_CASH] + sf[F_INV] * close
    risk_changed = risk_on_close(sf, si, settings, equity, ts_ms)
    prev = si[I_ACTIVE]
    active, cand, cand_n = hysteresis(prev, si[I_CAND], si[I_CAND_N], raw_regime, prob,
                                      int(settings[S_MIN_DWELL]), settings[S_MIN_PROB])
    si[I_CAND] = cand
    si[I_CAND_N] = cand_n
    switched = active != prev
    if switched:
        switch_regime(sf, si, grid, legacy, params, rules, active, close)
    if (not switched and not risk_changed and si[I_DIRTY] == 0 and si[I_BAR] < si[I_NEXT_EVENT_BAR]
            and sf[F_BAND_LO] < close <= sf[F_BAND_HI]):
        return False
    rebuild(sf, si, grid, legacy, orders, params, rules, settings, close)
    return True
