"""The spot grid: geometry, trailing up, stop-loss/take-profit, and the orders it wants at a close.

Geometry: `levels` price lines; arithmetic (equal quote steps) or geometric (equal ratios). Dynamic
range: centred on the close at arming, `grid_step_pct` apart; or, with `range_atr_mult` k > 0,
close -/+ k x ATR(`atr_bars`) at arming (strategies.atr), split like a fixed range. Fixed range:
lower..upper split into levels - 1 equal steps (or ratios). Cell k (0 <= k < levels - 1) buys at level k and sells what it
bought at level k + 1. Spot only: nothing is sold that the grid did not buy.

Orders at a close (each level carries at most one order, as on Binance):
- every holding cell k: a limit sell of its whole holding at level k + 1;
- every empty cell k whose buy price is below the close and whose level is not taken by the sell of
  cell k - 1: a limit buy of `order_size_quote` at level k, nearest the price first, while cash and
  exposure room last (the rest are counted as blocked).
Trailing up: when the close is at or above one step over the top level and the lowest cell holds
nothing, the whole grid moves up one step (repeated while both hold). Stop-loss / take-profit (absolute
prices, on the close): every grid holding is sold at market and the grid halts until re-armed.
"""

from __future__ import annotations

import numpy as np

from core.market_rules import OK, check_rules
from strategies.atr import atr_half_width, atr_mean
from strategies.book import narrow_band, push_order
from strategies.buckets import to_dust
from strategies.jit import engine_jit
from strategies.layout import (
    F_G_LO,
    F_G_STEP,
    F_G_TRAIL_AT,
    G_BUY_AMT,
    G_BUY_OK,
    G_BUY_PX,
    G_COST,
    G_PNL,
    G_QTY,
    G_SELL_PX,
    G_TR,
    I_ATR_N,
    I_BAR,
    I_G_CELLS,
    I_G_HALTED,
    I_N_BLOCKED,
    I_N_REJECTED,
    I_NEXT_EVENT_BAR,
    KIND_GRID_BUY,
    KIND_GRID_SELL,
    KIND_GRID_STOP,
    P_G_ATR_BARS,
    P_G_ATR_MULT,
    P_G_FIXED,
    P_G_GEOMETRIC,
    P_G_LEVELS,
    P_G_LOWER,
    P_G_ORDER_QUOTE,
    P_G_STEP_PCT,
    P_G_STOP_LOSS,
    P_G_TAKE_PROFIT,
    P_G_TRAILING_UP,
    P_G_UPPER,
)
from strategies.rounding import lot_amount, tick_price


@engine_jit()
def level_raw(lo: float, step: float, geometric: bool, k: int) -> float:
    """Level k's price before rounding to the tick."""
    if geometric:
        return lo * step ** float(k)  # a float exponent: C pow, as Python's float ** does
    return lo + step * k


@engine_jit()
def cache_levels(sf: np.ndarray, si: np.ndarray, grid: np.ndarray, p: np.ndarray, rules: np.ndarray) -> None:
    """Level prices on the tick grid and each cell's buy amount, computed once per layout."""
    lo, step, geometric = sf[F_G_LO], sf[F_G_STEP], p[P_G_GEOMETRIC] > 0.5
    size_quote = p[P_G_ORDER_QUOTE]
    sf[F_G_TRAIL_AT] = level_raw(lo, step, geometric, si[I_G_CELLS] + 1)
    for k in range(si[I_G_CELLS] + 1):
        raw = level_raw(lo, step, geometric, k)
        buy = tick_price(raw, rules, True)
        grid[k, G_BUY_PX] = buy
        grid[k, G_SELL_PX] = tick_price(raw, rules, False)
        amount = lot_amount(size_quote / buy, rules) if buy > 0.0 else 0.0
        grid[k, G_BUY_AMT] = amount
        grid[k, G_BUY_OK] = 1.0 if check_rules(buy, amount, rules) == OK else 0.0


@engine_jit()
def grid_layout(close: float, levels: int, geometric: bool, fixed: bool, lower: float, upper: float,
                atr_range: bool, half_width: float, step_pct: float) -> tuple[float, float]:
    """(lowest level, step) of a grid arming at `close`: level k = lo + k x step (arithmetic) or
    lo x step^k (geometric). The range is [lower, upper] when `fixed`, close -/+ half_width for an
    ATR-sized range, else the levels are `step_pct` apart, centred on the close. Also what
    `strategies.grid_profit` lays a grid out with, so its figure is the engine's."""
    if fixed or atr_range:
        lo, hi = (lower, upper) if fixed else (close - half_width, close + half_width)
        step = (hi / lo) ** (1.0 / (levels - 1)) if geometric else (hi - lo) / (levels - 1)
        return lo, step
    s = step_pct / 100.0
    if geometric:
        step = 1.0 + s
        return close / step ** ((levels - 1) / 2.0), step
    step = close * s
    return close - step * (levels - 1) / 2.0, step


@engine_jit()
def grid_arm(sf: np.ndarray, si: np.ndarray, grid: np.ndarray, p: np.ndarray, close: float, rules: np.ndarray) -> None:
    """Lay out a fresh grid (no holdings) for parameter row `p` at this close. An ATR-sized range with
    fewer than `atr_bars` bars recorded stays unarmed (0 cells): `grid_decide` arms it once they closed."""
    levels = int(p[P_G_LEVELS])
    if p[P_G_FIXED] < 0.5 and p[P_G_ATR_MULT] > 0.0 and si[I_ATR_N] < int(p[P_G_ATR_BARS]):
        si[I_G_CELLS] = 0
        si[I_G_HALTED] = 0
        return
    fixed = p[P_G_FIXED] > 0.5
    atr_range = not fixed and p[P_G_ATR_MULT] > 0.0
    half_width = 0.0
    if atr_range:  # close -/+ k x ATR (strategies.atr)
        half_width = atr_half_width(atr_mean(si, grid, int(p[P_G_ATR_BARS])), p[P_G_ATR_MULT], close, levels, rules)
    lo, step = grid_layout(close, levels, p[P_G_GEOMETRIC] > 0.5, fixed, p[P_G_LOWER], p[P_G_UPPER],
                           atr_range, half_width, p[P_G_STEP_PCT])
    sf[F_G_LO] = lo
    sf[F_G_STEP] = step
    si[I_G_CELLS] = levels - 1
    si[I_G_HALTED] = 0
    grid[: levels + 1, :G_TR] = 0.0  # G_TR is the ATR ring, not a cell column
    cache_levels(sf, si, grid, p, rules)


@engine_jit()
def _trail_up(sf: np.ndarray, si: np.ndarray, grid: np.ndarray, p: np.ndarray, close: float, rules: np.ndarray) -> None:
    cells, geometric = si[I_G_CELLS], p[P_G_GEOMETRIC] > 0.5
    while grid[0, G_QTY] <= 0.0 and close >= sf[F_G_TRAIL_AT]:
        sf[F_G_LO] = level_raw(sf[F_G_LO], sf[F_G_STEP], geometric, 1)
        for k in range(cells - 1):
            grid[k, G_QTY] = grid[k + 1, G_QTY]
            grid[k, G_COST] = grid[k + 1, G_COST]
            grid[k, G_PNL] = grid[k + 1, G_PNL]
        grid[cells - 1, G_QTY] = 0.0
        grid[cells - 1, G_COST] = 0.0
        grid[cells - 1, G_PNL] = 0.0
        cache_levels(sf, si, grid, p, rules)
    narrow_band(sf, -np.inf, np.nextafter(sf[F_G_TRAIL_AT], -np.inf))


@engine_jit()
def _halt(sf: np.ndarray, si: np.ndarray, grid: np.ndarray, orders: np.ndarray, n: int, close: float,
          rules: np.ndarray, epoch: int) -> int:
    si[I_G_HALTED] = 1
    held = 0.0
    for k in range(si[I_G_CELLS]):
        held += grid[k, G_QTY]
    if held <= 0.0:
        return n
    amount = lot_amount(held, rules)
    if amount > 0.0 and check_rules(close, amount, rules) == OK:
        return push_order(orders, n, close, amount, -1.0, KIND_GRID_STOP, 0, True, epoch, 0.0)
    si[I_N_REJECTED] += 1
    for k in range(si[I_G_CELLS]):
        to_dust(sf, grid[k, G_QTY])
        grid[k, G_QTY] = 0.0
        grid[k, G_COST] = 0.0
        grid[k, G_PNL] = 0.0
    return n


@engine_jit(inline="always")
def _buyable(grid: np.ndarray, k: int) -> bool:
    """Cell k may rest a buy: it holds nothing, its level is not taken by the sell of the cell below,
    and the buy passes the venue's minimums."""
    return grid[k, G_QTY] <= 0.0 and not (k > 0 and grid[k - 1, G_QTY] > 0.0) and grid[k, G_BUY_OK] > 0.5


@engine_jit()
def grid_decide(sf: np.ndarray, si: np.ndarray, grid: np.ndarray, orders: np.ndarray, n: int, p: np.ndarray,
                rules: np.ndarray, close: float, entries_ok: bool, budget: float, epoch: int) -> int:
    """Append the grid's desired orders to `orders[n:]`; returns the new count."""
    if si[I_G_CELLS] == 0:  # an ATR-sized range waiting for its bars: arm now, or re-decide when they closed
        grid_arm(sf, si, grid, p, close, rules)
        if si[I_G_CELLS] == 0:
            si[I_NEXT_EVENT_BAR] = si[I_BAR] + int(p[P_G_ATR_BARS]) - si[I_ATR_N]
            return n
    sl, tp = p[P_G_STOP_LOSS], p[P_G_TAKE_PROFIT]
    if si[I_G_HALTED] == 1 or (sl > 0.0 and close <= sl) or (tp > 0.0 and close >= tp):
        return _halt(sf, si, grid, orders, n, close, rules, epoch)
    if sl > 0.0:
        narrow_band(sf, sl, np.inf)
    if tp > 0.0:
        narrow_band(sf, -np.inf, np.nextafter(tp, -np.inf))
    if p[P_G_TRAILING_UP] > 0.5:
        _trail_up(sf, si, grid, p, close, rules)
    cells = si[I_G_CELLS]
    for k in range(cells):
        if grid[k, G_QTY] > 0.0:
            amount = lot_amount(grid[k, G_QTY], rules)
            price = grid[k + 1, G_SELL_PX]
            if check_rules(price, amount, rules) == OK:
                n = push_order(orders, n, price, amount, -1.0, KIND_GRID_SELL, k, False, epoch, 0.0)
            else:
                si[I_N_REJECTED] += 1
                to_dust(sf, grid[k, G_QTY])
                grid[k, G_QTY] = 0.0
                grid[k, G_COST] = 0.0
                grid[k, G_PNL] = 0.0
    below = 0  # cells whose buy price is below the close
    for k in range(cells):
        if grid[k, G_BUY_PX] < close:
            below = k + 1
    if not entries_ok:
        return n
    # Only the nearest buyable cells on either side change the set when the close crosses them.
    band_lo, band_hi = -np.inf, np.inf
    for k in range(below - 1, -1, -1):
        if _buyable(grid, k):
            band_lo = grid[k, G_BUY_PX]
            break
    for k in range(below, cells):
        if _buyable(grid, k):
            band_hi = grid[k, G_BUY_PX]
            break
    narrow_band(sf, band_lo, band_hi)
    for k in range(below - 1, -1, -1):
        if grid[k, G_QTY] > 0.0 or (k > 0 and grid[k - 1, G_QTY] > 0.0):
            continue
        price, amount = grid[k, G_BUY_PX], grid[k, G_BUY_AMT]
        if grid[k, G_BUY_OK] < 0.5:
            si[I_N_REJECTED] += 1
            continue
        if price * amount > budget:
            si[I_N_BLOCKED] += 1
            continue
        budget -= price * amount
        n = push_order(orders, n, price, amount, 1.0, KIND_GRID_BUY, k, False, epoch, grid[k + 1, G_SELL_PX])
    return n
