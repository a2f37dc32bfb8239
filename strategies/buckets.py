"""Inventory buckets: who owns each unit of base, at what cost, and where it exits.

Inventory is split into buckets, each with its own exit: a grid cell (sells one level up), the DCA
cycle's position (take-profit on the average entry) and legacy exits (holdings of a regime that was
switched away, keeping their exit price). Every bucket holds whole lots, so every exit sells exactly
what it holds; the fraction of a lot a buy leaves after the exchange takes its fee in base is dust
(`F_DUST`), which the next buy's bucket absorbs. A bucket's cost is the quote paid for it, so the
fee is inside the cost. Pure numba helpers; nothing here decides orders.
"""

from __future__ import annotations

import numpy as np

from strategies.jit import engine_jit
from strategies.layout import (
    F_CASH,
    F_DUST,
    F_FEES,
    F_GROSS_LOSS,
    F_GROSS_PROFIT,
    F_INV,
    F_LEG_COST,
    F_REALIZED,
    F_TURNOVER,
    I_LEG_DIRTY,
    I_N_CYCLES,
    I_N_LEGACY,
    I_N_WINS,
    MAX_LEGACY,
    X_COST,
    X_PNL,
    X_PRICE,
    X_QTY,
    X_STOP,
)
from strategies.rounding import lot_amount

# Below this fraction of a lot a bucket's remainder is float noise, not inventory.
_RESIDUAL_LOTS = 1e-6


@engine_jit()
def credit_buy(sf: np.ndarray, qty: float, price: float, fee: float, rules: np.ndarray) -> float:
    """Book a buy fill: pay qty*price, receive qty*(1-fee) base; returns the whole lots the buying
    bucket gets (dust from earlier fills included); the rest stays dust."""
    value = qty * price
    sf[F_CASH] -= value
    received = qty * (1.0 - fee)
    sf[F_INV] += received
    sf[F_FEES] += qty * fee * price
    sf[F_TURNOVER] += value
    total = received + sf[F_DUST]
    lots = lot_amount(total, rules)
    sf[F_DUST] = total - lots
    return lots


@engine_jit()
def debit_sell(sf: np.ndarray, qty: float, price: float, fee: float) -> float:
    """Book a sell fill (fee in quote); returns the net proceeds."""
    value = qty * price
    proceeds = value * (1.0 - fee)
    sf[F_CASH] += proceeds
    sf[F_INV] -= qty
    sf[F_FEES] += value * fee
    sf[F_TURNOVER] += value
    return proceeds


@engine_jit()
def take(qty_held: float, cost_held: float, qty_sold: float, lot: float) -> tuple[float, float, float]:
    """Share of a bucket's cost that `qty_sold` carries: (cost_sold, qty_left, cost_left).
    A remainder below a millionth of a lot counts as sold (float noise), with its cost."""
    if qty_held <= 0.0:
        return 0.0, 0.0, 0.0
    frac = qty_sold / qty_held
    if frac > 1.0:
        frac = 1.0
    qty_left = qty_held - qty_sold
    if qty_left <= lot * _RESIDUAL_LOTS:
        return cost_held, 0.0, 0.0
    cost_sold = cost_held * frac
    return cost_sold, qty_left, cost_held - cost_sold


@engine_jit()
def close_trade(sf: np.ndarray, si: np.ndarray, pnl: float) -> None:
    """A bucket emptied: one finished cycle (grid round trip, DCA cycle or legacy exit)."""
    si[I_N_CYCLES] += 1
    if pnl > 0.0:
        si[I_N_WINS] += 1
        sf[F_GROSS_PROFIT] += pnl
    else:
        sf[F_GROSS_LOSS] -= pnl


@engine_jit()
def realize(sf: np.ndarray, pnl: float) -> None:
    sf[F_REALIZED] += pnl


@engine_jit()
def legacy_cost(si: np.ndarray, legacy: np.ndarray) -> float:
    """Cost of every legacy exit, summed in slot order (one fixed order: the reference sums alike)."""
    total = 0.0
    for j in range(si[I_N_LEGACY]):
        total += legacy[j, X_COST]
    return total


@engine_jit()
def legacy_add(sf: np.ndarray, si: np.ndarray, legacy: np.ndarray, qty: float, cost: float, price: float, stop: float, pnl: float) -> int:
    """Keep an exit across a regime switch: the first free slot, else a new one; when the table is
    full, the newcomer merges into the last slot (summed, the higher price, the lower stop)."""
    si[I_LEG_DIRTY] = 1
    hwm = si[I_N_LEGACY]
    slot = -1
    for j in range(hwm):
        if legacy[j, X_QTY] <= 0.0:
            slot = j
            break
    if slot < 0 and hwm < MAX_LEGACY:
        slot = hwm
        si[I_N_LEGACY] = hwm + 1
    if slot < 0:
        j = MAX_LEGACY - 1
        legacy[j, X_QTY] += qty
        legacy[j, X_COST] += cost
        legacy[j, X_PNL] += pnl
        legacy[j, X_PRICE] = max(legacy[j, X_PRICE], price)
        old_stop = legacy[j, X_STOP]
        legacy[j, X_STOP] = 0.0 if (old_stop <= 0.0 or stop <= 0.0) else min(old_stop, stop)
        sf[F_LEG_COST] = legacy_cost(si, legacy)
        return j
    legacy[slot, X_QTY] = qty
    legacy[slot, X_COST] = cost
    legacy[slot, X_PRICE] = price
    legacy[slot, X_STOP] = stop
    legacy[slot, X_PNL] = pnl
    sf[F_LEG_COST] = legacy_cost(si, legacy)
    return slot


@engine_jit()
def to_dust(sf: np.ndarray, qty: float) -> None:
    """A holding too small to sell (below the venue's minimum): it becomes dust, which the next buy absorbs."""
    sf[F_DUST] += qty


