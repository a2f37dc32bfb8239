"""The desired-order table and the quiet band that lets a close skip re-deciding.

After a decision the table holds the orders that should rest for the next bar, in a canonical
order (market orders and legacy exits first, then the active engine's), which is also the tie-break
when several orders fill at the same point of a bar. The quiet band (BAND_LO, BAND_HI] is the range
of closes over which the very same decision would come out again: every rule that depends on the
close narrows it. While nothing else changes (no fill, no regime switch, no risk flag, no timer) and
the close stays inside, the orders stand; this is an exact shortcut, not an approximation, and the
pure-Python reference (which re-decides at every close) checks it fill for fill.
"""

from __future__ import annotations

import numpy as np

from strategies.jit import engine_jit
from strategies.layout import (
    F_BAND_HI,
    F_BAND_LO,
    F_LEG_MIN_SELL,
    F_MAX_BUY,
    F_MIN_SELL,
    I_HAS_MARKET,
    I_LEG_HAS_MARKET,
    I_N_ORDERS,
    MAX_ORDERS,
    O_AMOUNT,
    O_AUX,
    O_EPOCH,
    O_KIND,
    O_MARKET,
    O_PRICE,
    O_REF,
    O_SIDE,
    O_T,
)


@engine_jit(inline="always")
def push_order(orders: np.ndarray, n: int, price: float, amount: float, side: float, kind: int, ref: int,
               market: bool, epoch: int, aux: float) -> int:
    if n >= MAX_ORDERS:  # cannot happen with MAX_LEVELS grid cells, MAX_LEGACY exits and 50 safety orders
        return n
    orders[n, O_PRICE] = price
    orders[n, O_AMOUNT] = amount
    orders[n, O_SIDE] = side
    orders[n, O_KIND] = kind
    orders[n, O_REF] = ref
    orders[n, O_MARKET] = 1.0 if market else 0.0
    orders[n, O_EPOCH] = epoch
    orders[n, O_AUX] = aux
    orders[n, O_T] = -1.0
    return n + 1


@engine_jit(inline="always")
def narrow_band(sf: np.ndarray, lo: float, hi: float) -> None:
    """The decision holds only while lo < close <= hi as well."""
    if lo > sf[F_BAND_LO]:
        sf[F_BAND_LO] = lo
    if hi < sf[F_BAND_HI]:
        sf[F_BAND_HI] = hi


@engine_jit()
def finish_book(sf: np.ndarray, si: np.ndarray, orders: np.ndarray, start: int, n: int) -> None:
    """Record the table size and the bounds a bar must reach before any order can fill; the legacy
    prefix orders[:start] (sells only) contributes through F_LEG_MIN_SELL / I_LEG_HAS_MARKET."""
    max_buy, min_sell, has_market = -np.inf, sf[F_LEG_MIN_SELL], si[I_LEG_HAS_MARKET]
    for i in range(start, n):
        if orders[i, O_MARKET] > 0.5:
            has_market = 1
        elif orders[i, O_SIDE] > 0.0:
            max_buy = max(max_buy, orders[i, O_PRICE])
        else:
            min_sell = min(min_sell, orders[i, O_PRICE])
    sf[F_MAX_BUY] = max_buy
    sf[F_MIN_SELL] = min_sell
    si[I_HAS_MARKET] = has_market
    si[I_N_ORDERS] = n
