"""Averaging (DCA), in the vocabulary 3Commas users know, and the orders it wants at a close.

A cycle starts with a market base order (`base_order_quote`, filled at the next bar's open). Safety
order m (1..max_safety_orders) is a limit buy at the base fill price minus the cumulative deviation
`price_deviation_pct * (1 + step_scale + ... + step_scale**(m-1))` percent, sized
`safety_order_quote * volume_scale**(m-1)`; all remaining safety orders rest at once, nearest first,
while cash and exposure room last. The take-profit is a limit sell of the whole position at
`average_entry * (1 + take_profit_pct/100)`, where the average entry is the volume-weighted price of
the cycle's buy fills.
Trailing take-profit (optional): no resting take-profit; once a close reaches the take-profit price,
the highest close since is tracked and the position is sold at market when a close falls
`trailing_take_profit_pct` below it. Stop-loss (optional): a close at or below
`average_entry * (1 - stop_loss_pct/100)` sells the position at market and cancels the safety orders.
After the exit fills, the next base order waits `cooldown_bars` closes.
"""

from __future__ import annotations

import numpy as np

from core.market_rules import OK, check_rules
from strategies.book import narrow_band, push_order
from strategies.buckets import to_dust
from strategies.jit import engine_jit
from strategies.layout import (
    F_D_COST,
    F_D_ENTRY,
    F_D_PEAK,
    F_D_POS,
    F_D_VWAP_DEN,
    F_D_VWAP_NUM,
    I_BAR,
    I_D_COOLDOWN_UNTIL,
    I_D_IN_CYCLE,
    I_D_NSO,
    I_D_TRAILING,
    I_N_BLOCKED,
    I_N_REJECTED,
    I_NEXT_EVENT_BAR,
    KIND_DCA_BASE,
    KIND_DCA_EXIT,
    KIND_DCA_SO,
    KIND_DCA_TP,
    P_D_BASE_QUOTE,
    P_D_DEV_PCT,
    P_D_MAX_SO,
    P_D_SL_PCT,
    P_D_SO_QUOTE,
    P_D_STEP_SCALE,
    P_D_TP_PCT,
    P_D_TRAIL_PCT,
    P_D_VOL_SCALE,
)
from strategies.rounding import lot_amount, tick_price


@engine_jit()
def dca_reset(sf: np.ndarray, si: np.ndarray) -> None:
    sf[F_D_POS] = 0.0
    sf[F_D_COST] = 0.0
    sf[F_D_VWAP_NUM] = 0.0
    sf[F_D_VWAP_DEN] = 0.0
    sf[F_D_ENTRY] = 0.0
    sf[F_D_PEAK] = 0.0
    si[I_D_IN_CYCLE] = 0
    si[I_D_NSO] = 0
    si[I_D_TRAILING] = 0


@engine_jit()
def average_entry(sf: np.ndarray) -> float:
    return sf[F_D_VWAP_NUM] / sf[F_D_VWAP_DEN] if sf[F_D_VWAP_DEN] > 0.0 else np.nan


@engine_jit()
def take_profit_price(sf: np.ndarray, p: np.ndarray, rules: np.ndarray) -> float:
    return tick_price(average_entry(sf) * (1.0 + p[P_D_TP_PCT] / 100.0), rules, False)


@engine_jit()
def _base_order(si: np.ndarray, orders: np.ndarray, n: int, p: np.ndarray, rules: np.ndarray, close: float,
                budget: float, buffer: float, epoch: int) -> int:
    if si[I_BAR] < si[I_D_COOLDOWN_UNTIL]:
        si[I_NEXT_EVENT_BAR] = min(si[I_NEXT_EVENT_BAR], si[I_D_COOLDOWN_UNTIL])
        return n
    amount = lot_amount(p[P_D_BASE_QUOTE] / close, rules)
    if check_rules(close, amount, rules) != OK:
        si[I_N_REJECTED] += 1
        si[I_NEXT_EVENT_BAR] = si[I_BAR] + 1  # sized at the close: try again at the next one
        return n
    if p[P_D_BASE_QUOTE] * (1.0 + buffer) > budget:  # reserve the quote size, not the close's value:
        si[I_N_BLOCKED] += 1  # whether it fits then changes only with fills
        return n
    aux = tick_price(close * (1.0 + p[P_D_TP_PCT] / 100.0), rules, False)
    return push_order(orders, n, close, amount, 1.0, KIND_DCA_BASE, 0, True, epoch, aux)


@engine_jit()
def _exit_at_market(sf: np.ndarray, si: np.ndarray, orders: np.ndarray, n: int, rules: np.ndarray, close: float,
                    epoch: int) -> int:
    amount = lot_amount(sf[F_D_POS], rules)
    if check_rules(close, amount, rules) == OK:
        return push_order(orders, n, close, amount, -1.0, KIND_DCA_EXIT, 0, True, epoch, 0.0)
    si[I_N_REJECTED] += 1  # a position too small to sell ends the cycle as dust
    to_dust(sf, sf[F_D_POS])
    dca_reset(sf, si)
    return n


@engine_jit()
def _safety_orders(sf: np.ndarray, si: np.ndarray, orders: np.ndarray, n: int, p: np.ndarray, rules: np.ndarray,
                   budget: float, epoch: int, aux: float) -> int:
    entry, max_so = sf[F_D_ENTRY], int(p[P_D_MAX_SO])
    dev_step, cum_dev, size_quote = p[P_D_DEV_PCT], 0.0, p[P_D_SO_QUOTE]
    for m in range(1, max_so + 1):
        cum_dev += dev_step
        if m > si[I_D_NSO]:
            price = tick_price(entry * (1.0 - cum_dev / 100.0), rules, True)
            amount = lot_amount(size_quote / price, rules)
            if check_rules(price, amount, rules) != OK:
                si[I_N_REJECTED] += 1
            elif price * amount > budget:
                si[I_N_BLOCKED] += max_so - m + 1
                return n
            else:
                budget -= price * amount
                n = push_order(orders, n, price, amount, 1.0, KIND_DCA_SO, m, False, epoch, aux)
        dev_step *= p[P_D_STEP_SCALE]
        size_quote *= p[P_D_VOL_SCALE]
    return n


@engine_jit()
def dca_decide(sf: np.ndarray, si: np.ndarray, orders: np.ndarray, n: int, p: np.ndarray, rules: np.ndarray,
               close: float, entries_ok: bool, budget: float, buffer: float, epoch: int) -> int:
    """Append the DCA cycle's desired orders to `orders[n:]`; returns the new count."""
    if si[I_D_IN_CYCLE] == 0:
        if not entries_ok:
            return n
        return _base_order(si, orders, n, p, rules, close, budget, buffer, epoch)
    avg = average_entry(sf)
    sl_pct, trail_pct = p[P_D_SL_PCT], p[P_D_TRAIL_PCT]
    if sl_pct > 0.0:
        stop = avg * (1.0 - sl_pct / 100.0)
        if close <= stop:
            return _exit_at_market(sf, si, orders, n, rules, close, epoch)
        narrow_band(sf, stop, np.inf)
    tp_raw = avg * (1.0 + p[P_D_TP_PCT] / 100.0)
    tp_price = tick_price(tp_raw, rules, False)
    if trail_pct > 0.0:
        if si[I_D_TRAILING] == 0 and close >= tp_raw:
            si[I_D_TRAILING] = 1
            sf[F_D_PEAK] = close
        if si[I_D_TRAILING] == 1:
            if close > sf[F_D_PEAK]:
                sf[F_D_PEAK] = close
            trail_stop = sf[F_D_PEAK] * (1.0 - trail_pct / 100.0)
            if close <= trail_stop:
                return _exit_at_market(sf, si, orders, n, rules, close, epoch)
            narrow_band(sf, trail_stop, sf[F_D_PEAK])
        else:
            narrow_band(sf, -np.inf, np.nextafter(tp_raw, -np.inf))
    else:
        amount = lot_amount(sf[F_D_POS], rules)
        if check_rules(tp_price, amount, rules) == OK:
            n = push_order(orders, n, tp_price, amount, -1.0, KIND_DCA_TP, 0, False, epoch, 0.0)
        else:
            si[I_N_REJECTED] += 1
    if entries_ok:
        n = _safety_orders(sf, si, orders, n, p, rules, budget, epoch, tp_price)
    return n
