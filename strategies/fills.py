"""Fills: book one fill into the state (`apply_fill`, also the live runner's entry point) and find the
fills of one bar with the OHLC fill model (`fill_bar`, the simulator's step).

`apply_fill` takes the order's identity (kind, ref, epoch, aux), not a table row, so the live runner
can feed it what the exchange reports, partial fills included. A fill whose epoch is older than the
current arming (a grid or DCA order that filled while being cancelled at a regime switch) is booked
safely: a stale buy becomes a legacy exit at the order's intended exit price (`aux`), a stale sell is
taken from the holdings (legacy, grid cells, DCA position, then dust).
"""

from __future__ import annotations

import numpy as np

from core.market_rules import OK, R_LOT, R_MAKER_FEE, R_TAKER_FEE, check_rules
from strategies.buckets import close_trade, credit_buy, debit_sell, legacy_add, legacy_cost, realize, take
from strategies.dca import average_entry, dca_reset
from strategies.fill_model import fill_time
from strategies.jit import engine_jit
from strategies.layout import (
    ENGINE_GRID,
    F_CASH,
    F_D_COST,
    F_D_CYCLE_PNL,
    F_D_ENTRY,
    F_D_POS,
    F_D_VWAP_DEN,
    F_D_VWAP_NUM,
    F_DUST,
    F_INV,
    F_INV_COST,
    F_LEG_COST,
    F_LEG_MIN_SELL,
    F_MAX_BUY,
    F_MIN_SELL,
    G_COST,
    G_PNL,
    G_QTY,
    I_ACTIVE,
    I_BAR,
    I_D_COOLDOWN_UNTIL,
    I_D_IN_CYCLE,
    I_D_NSO,
    I_DIRTY,
    I_ENGINE,
    I_EPOCH,
    I_G_CELLS,
    I_HAS_MARKET,
    I_LEG_DIRTY,
    I_LEG_HAS_MARKET,
    I_LOG_OVERFLOW,
    I_N_BUYS,
    I_N_FILLS,
    I_N_LEG_ORDERS,
    I_N_LEGACY,
    I_N_ORDERS,
    I_N_REJECTED,
    I_N_SELLS,
    KIND_DCA_BASE,
    KIND_DCA_EXIT,
    KIND_DCA_SO,
    KIND_DCA_TP,
    KIND_GRID_BUY,
    KIND_GRID_SELL,
    KIND_KILL,
    KIND_LEGACY_EXIT,
    KIND_LEGACY_SELL,
    L_AVG_ENTRY,
    L_BAR,
    L_CASH,
    L_FEE_QUOTE,
    L_INV,
    L_KIND,
    L_PNL,
    L_PRICE,
    L_QTY,
    L_REF,
    L_REGIME,
    L_SIDE,
    L_T,
    L_TAKER,
    O_AMOUNT,
    O_AUX,
    O_EPOCH,
    O_KIND,
    O_MARKET,
    O_PRICE,
    O_REF,
    O_SIDE,
    O_T,
    P_D_COOLDOWN,
    S_TOUCH,
    X_COST,
    X_PNL,
    X_QTY,
)


@engine_jit()
def inventory_cost(sf: np.ndarray, si: np.ndarray, grid: np.ndarray, legacy: np.ndarray) -> float:
    total = sf[F_D_COST]
    for k in range(si[I_G_CELLS]):
        total += grid[k, G_COST]
    return total + sf[F_LEG_COST]


@engine_jit()
def _sell_row(si: np.ndarray, table: np.ndarray, row: int, qc: int, cc: int, pc: int, qty: float,
              proceeds: float, lot: float) -> float:
    """Sell `qty` out of one grid cell or legacy slot; returns the realized PnL."""
    cost_sold, qty_left, cost_left = take(table[row, qc], table[row, cc], qty, lot)
    pnl = proceeds - cost_sold
    table[row, pc] += pnl
    table[row, qc] = qty_left
    table[row, cc] = cost_left
    return pnl


@engine_jit()
def _closed_row(sf: np.ndarray, si: np.ndarray, table: np.ndarray, row: int, qc: int, pc: int) -> None:
    if table[row, qc] <= 0.0:
        close_trade(sf, si, table[row, pc])
        table[row, pc] = 0.0


@engine_jit()
def _sell_dca(sf: np.ndarray, si: np.ndarray, p_cooldown: float, qty: float, proceeds: float, lot: float) -> float:
    cost_sold, qty_left, cost_left = take(sf[F_D_POS], sf[F_D_COST], qty, lot)
    pnl = proceeds - cost_sold
    sf[F_D_CYCLE_PNL] += pnl
    sf[F_D_POS] = qty_left
    sf[F_D_COST] = cost_left
    if qty_left <= 0.0 and si[I_D_IN_CYCLE] == 1:
        close_trade(sf, si, sf[F_D_CYCLE_PNL])
        sf[F_D_CYCLE_PNL] = 0.0
        dca_reset(sf, si)
        si[I_D_COOLDOWN_UNTIL] = si[I_BAR] + 1 + int(p_cooldown)
    return pnl


@engine_jit()
def _sell_across(sf: np.ndarray, si: np.ndarray, grid: np.ndarray, legacy: np.ndarray, qty: float,
                 proceeds: float, lot: float, p_cooldown: float) -> float:
    """Sell `qty` out of every holding in turn: legacy slots, grid cells, the DCA position, then dust."""
    unit = proceeds / qty if qty > 0.0 else 0.0
    left, pnl = qty, 0.0
    for j in range(si[I_N_LEGACY]):
        part = min(left, legacy[j, X_QTY])
        if part > 0.0:
            pnl += _sell_row(si, legacy, j, X_QTY, X_COST, X_PNL, part, part * unit, lot)
            _closed_row(sf, si, legacy, j, X_QTY, X_PNL)
            left -= part
    for k in range(si[I_G_CELLS]):
        part = min(left, grid[k, G_QTY])
        if part > 0.0:
            pnl += _sell_row(si, grid, k, G_QTY, G_COST, G_PNL, part, part * unit, lot)
            _closed_row(sf, si, grid, k, G_QTY, G_PNL)
            left -= part
    part = min(left, sf[F_D_POS])
    if part > 0.0:
        pnl += _sell_dca(sf, si, p_cooldown, part, part * unit, lot)
        left -= part
    if left > 0.0:
        sf[F_DUST] -= left
        pnl += left * unit
    return pnl


@engine_jit()
def _book_buy(sf: np.ndarray, si: np.ndarray, grid: np.ndarray, legacy: np.ndarray, kind: int, ref: int,
              stale: bool, aux: float, price: float, qty: float, fee: float, rules: np.ndarray) -> float:
    """Returns the DCA average entry after the fill (nan for other buys)."""
    lots = credit_buy(sf, qty, price, fee, rules)
    cost = qty * price
    if stale or (kind == KIND_GRID_BUY and si[I_ENGINE] != ENGINE_GRID):
        legacy_add(sf, si, legacy, lots, cost, aux, 0.0, 0.0)
        return np.nan
    if kind == KIND_GRID_BUY:
        grid[ref, G_QTY] += lots
        grid[ref, G_COST] += cost
        return np.nan
    if si[I_D_IN_CYCLE] == 0:
        dca_reset(sf, si)
        si[I_D_IN_CYCLE] = 1
        sf[F_D_ENTRY] = price
        sf[F_D_CYCLE_PNL] = 0.0
    if kind == KIND_DCA_SO and ref > si[I_D_NSO]:
        si[I_D_NSO] = ref
    sf[F_D_POS] += lots
    sf[F_D_COST] += cost
    sf[F_D_VWAP_NUM] += cost
    sf[F_D_VWAP_DEN] += qty
    return average_entry(sf)


@engine_jit()
def _book_sell(sf: np.ndarray, si: np.ndarray, grid: np.ndarray, legacy: np.ndarray, p_cooldown: float,
               kind: int, ref: int, stale: bool, proceeds: float, qty: float, lot: float) -> float:
    if stale or kind == KIND_KILL:
        return _sell_across(sf, si, grid, legacy, qty, proceeds, lot, p_cooldown)
    if kind == KIND_GRID_SELL:
        pnl = _sell_row(si, grid, ref, G_QTY, G_COST, G_PNL, qty, proceeds, lot)
        _closed_row(sf, si, grid, ref, G_QTY, G_PNL)
        return pnl
    if kind == KIND_LEGACY_SELL or kind == KIND_LEGACY_EXIT:
        pnl = _sell_row(si, legacy, ref, X_QTY, X_COST, X_PNL, qty, proceeds, lot)
        _closed_row(sf, si, legacy, ref, X_QTY, X_PNL)
        return pnl
    if kind == KIND_DCA_TP or kind == KIND_DCA_EXIT:
        return _sell_dca(sf, si, p_cooldown, qty, proceeds, lot)
    # KIND_GRID_STOP: every cell, lowest first
    unit, left, pnl = proceeds / qty, qty, 0.0
    for k in range(si[I_G_CELLS]):
        part = min(left, grid[k, G_QTY])
        if part > 0.0:
            pnl += _sell_row(si, grid, k, G_QTY, G_COST, G_PNL, part, part * unit, lot)
            _closed_row(sf, si, grid, k, G_QTY, G_PNL)
            left -= part
    if left > 0.0:
        sf[F_DUST] -= left
        pnl += left * unit
    return pnl


@engine_jit()
def apply_fill(sf: np.ndarray, si: np.ndarray, grid: np.ndarray, legacy: np.ndarray, params: np.ndarray,
               rules: np.ndarray, kind: int, ref: int, epoch: int, aux: float, price: float, qty: float,
               taker: bool, t: float, log: np.ndarray, log_n: int) -> int:
    """Book one fill (any size up to the order's amount). Returns the fill log's new length."""
    fee = rules[R_TAKER_FEE] if taker else rules[R_MAKER_FEE]
    lot = rules[R_LOT]
    is_buy = kind == KIND_GRID_BUY or kind == KIND_DCA_BASE or kind == KIND_DCA_SO
    stale = kind <= KIND_DCA_EXIT and epoch != si[I_EPOCH]
    row = si[I_ACTIVE]
    p_cooldown = params[row, P_D_COOLDOWN] if row >= 0 else 0.0
    avg, pnl = np.nan, 0.0
    if is_buy:
        avg = _book_buy(sf, si, grid, legacy, kind, ref, stale, aux, price, qty, fee, rules)
        si[I_N_BUYS] += 1
    else:
        proceeds = debit_sell(sf, qty, price, fee)
        pnl = _book_sell(sf, si, grid, legacy, p_cooldown, kind, ref, stale, proceeds, qty, lot)
        if stale or kind == KIND_KILL or kind == KIND_LEGACY_SELL or kind == KIND_LEGACY_EXIT:
            si[I_LEG_DIRTY] = 1  # legacy holdings changed: their orders are rebuilt at the close
            sf[F_LEG_COST] = legacy_cost(si, legacy)
        realize(sf, pnl)
        si[I_N_SELLS] += 1
    sf[F_INV_COST] = inventory_cost(sf, si, grid, legacy)
    si[I_N_FILLS] += 1
    si[I_DIRTY] = 1
    if log_n < log.shape[0]:
        log[log_n, L_BAR] = si[I_BAR] + 1
        log[log_n, L_T] = t
        log[log_n, L_SIDE] = 1.0 if is_buy else -1.0
        log[log_n, L_KIND] = kind
        log[log_n, L_REF] = ref
        log[log_n, L_PRICE] = price
        log[log_n, L_QTY] = qty
        log[log_n, L_FEE_QUOTE] = qty * price * fee
        log[log_n, L_PNL] = pnl
        log[log_n, L_CASH] = sf[F_CASH]
        log[log_n, L_INV] = sf[F_INV]
        log[log_n, L_AVG_ENTRY] = avg
        log[log_n, L_TAKER] = 1.0 if taker else 0.0
        log[log_n, L_REGIME] = row
    elif log.shape[0] > 0:
        si[I_LOG_OVERFLOW] = 1
    return log_n + 1


@engine_jit()
def _market_fill_ok(sf: np.ndarray, si: np.ndarray, rules: np.ndarray, side: float, amount: float, o: float) -> bool:
    """A market order meets the open: the venue re-checks its rules there, and a buy must be paid for."""
    if check_rules(o, amount, rules) != OK or (side > 0.0 and amount * o > sf[F_CASH]):
        si[I_N_REJECTED] += 1
        return False
    return True


FILLED = -2.0  # O_T of an order already filled in this bar (or an earlier one, before the close)


@engine_jit()
def _fill_times(orders: np.ndarray, start: int, n: int, o: float, h: float, l: float, c: float,  # noqa: E741
                touch: bool) -> tuple[int, int]:
    """Write each order's fill time to O_T (-1: no fill, -2 stays: already filled); returns how many
    fill and the row of the earliest (the first in table order among equal times)."""
    hits, first, first_t = 0, -1, np.inf
    for i in range(start, n):
        if orders[i, O_T] == FILLED:
            continue
        if orders[i, O_MARKET] > 0.5:
            t = 0.0
        else:
            price, buy = orders[i, O_PRICE], orders[i, O_SIDE] > 0.0
            t = -1.0 if (l > price if buy else h < price) else fill_time(buy, price, o, h, l, c, touch)
        orders[i, O_T] = t
        if t >= 0.0:
            hits += 1
            if t < first_t:
                first, first_t = i, t
    return hits, first


@engine_jit()
def fill_bar(sf: np.ndarray, si: np.ndarray, grid: np.ndarray, legacy: np.ndarray, orders: np.ndarray,
             params: np.ndarray, rules: np.ndarray, settings: np.ndarray, o: float, h: float, l: float,  # noqa: E741
             c: float, log: np.ndarray, log_n: int) -> int:
    """Fill the resting orders the bar trades through, in the order its path reaches them (ties in
    table order). Market orders fill at the open (t = 0) with the taker fee; limits at their price,
    maker fee. No allocation: fill times live in the table's scratch column, and filled orders stay
    in the table marked FILLED (never filled twice) until the close re-decides the set, which it
    always does after a fill."""
    n = si[I_N_ORDERS]
    if n == 0:
        return log_n
    # A bar whose low stays above every buy and whose high stays below every sell fills nothing:
    # most bars end here, before any per-order work.
    if si[I_HAS_MARKET] == 0 and l > sf[F_MAX_BUY] and h < sf[F_MIN_SELL]:
        return log_n
    # the legacy exits at the head of the table (all sells) are skipped when the high reaches none
    start = 0 if si[I_LEG_HAS_MARKET] == 1 or h >= sf[F_LEG_MIN_SELL] else si[I_N_LEG_ORDERS]
    hits, i = _fill_times(orders, start, n, o, h, l, c, settings[S_TOUCH] > 0.5)
    if hits == 0:
        return log_n
    t = orders[i, O_T]
    for h_k in range(hits):
        if h_k > 0:  # the earliest remaining fill; strict < keeps table order among equal t
            i, t = -1, np.inf
            for k in range(start, n):
                if 0.0 <= orders[k, O_T] < t:
                    i, t = k, orders[k, O_T]
        orders[i, O_T] = FILLED
        kind, market = int(orders[i, O_KIND]), orders[i, O_MARKET] > 0.5
        amount, side = orders[i, O_AMOUNT], orders[i, O_SIDE]
        if kind == KIND_LEGACY_SELL or kind == KIND_LEGACY_EXIT:
            si[I_LEG_DIRTY] = 1
        if market and not _market_fill_ok(sf, si, rules, side, amount, o):
            continue
        log_n = apply_fill(sf, si, grid, legacy, params, rules, kind, int(orders[i, O_REF]), int(orders[i, O_EPOCH]),
                           orders[i, O_AUX], o if market else orders[i, O_PRICE], amount, market, t, log, log_n)
    si[I_DIRTY] = 1
    return log_n
