"""Profit per grid round trip after fees: what Binance's grid bot shows as "profit per grid".

A grid cell buys at level k and sells what it received at level k + 1, both as limit orders, so both
legs pay the maker fee f. The buy's fee is taken in base (q units bought, q x (1 - f) received) and
the sell's in quote, so one round trip returns

    (1 - f)^2 x level[k + 1] / level[k] - 1

of what its buy cost. Arithmetic spacing keeps the step fixed while the price rises, so the ratio (and
the profit) is largest in the bottom cell and smallest in the top one; geometric spacing gives every
cell the same ratio. A grid whose step is below the two fees loses money on every round trip, which
a backtest shows only as a 0% win rate; `grid_profit_problem` says so before anything runs.

Tick rounding is left out on purpose: buys round down and sells up, which only widens a step, so the
figure here never overstates the profit. An ATR-sized range is known only when the grid arms; it is
estimated from a typical ATR (`typical_atr_frac`) where candles are at hand, and skipped otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from core.config import GridConfig
from core.errors import ConfigError
from core.market_rules import R_TICK
from strategies.atr import atr_half_width
from strategies.grid import grid_layout
from strategies.policy import Policy


@dataclass(frozen=True)
class GridProfit:
    min_pct: float  # net profit of one round trip after both fees, worst cell (% of the buy's cost)
    max_pct: float  # the same, best cell
    step_min_pct: float  # gross step: level above / level - 1, smallest over the cells
    step_max_pct: float
    fees_pct: float  # buy fee + sell fee (maker, both legs)


def level_ratios(g: GridConfig, ref_price: float = 1.0, atr_frac: float | None = None,
                 tick_size: float = 0.0) -> np.ndarray | None:
    """level[k + 1] / level[k] for every cell, laid out by the engine's own `grid_layout` at a close of
    `ref_price` (only ratios matter). `atr_frac` (ATR / close) sizes an ATR range, through the engine's
    `atr_half_width` (its two-tick floor needs `tick_size`); without it that range is unknown before
    arming and the answer is None."""
    n, geometric = g.levels, g.spacing == "geometric"
    fixed = g.range_mode == "fixed"
    atr_range = not fixed and g.range_atr_mult > 0
    half_width = 0.0
    if atr_range:
        if atr_frac is None:
            return None
        rules = np.zeros(R_TICK + 1)
        rules[R_TICK] = tick_size
        half_width = atr_half_width(atr_frac * ref_price, g.range_atr_mult, ref_price, n, rules)
    lo, step = grid_layout(ref_price, n, geometric, fixed, float(g.lower_price or 0.0), float(g.upper_price or 0.0),
                           atr_range, half_width, g.grid_step_pct)
    if geometric:
        return np.full(n - 1, step)
    levels = lo + step * np.arange(n, dtype=np.float64)
    return levels[1:] / levels[:-1]


def grid_profit(g: GridConfig, maker_fee: float, ref_price: float = 1.0, atr_frac: float | None = None,
                tick_size: float = 0.0) -> GridProfit | None:
    """Profit per round trip after fees over the grid's cells; None when the range is not known yet.
    `maker_fee` is a fraction (`MarketRules.maker_fee`), as both legs are limit orders."""
    ratios = level_ratios(g, ref_price, atr_frac, tick_size)
    if ratios is None:
        return None
    net = (1.0 - maker_fee) ** 2 * ratios - 1.0
    return GridProfit(float(net.min()) * 100, float(net.max()) * 100, float(ratios.min() - 1) * 100,
                      float(ratios.max() - 1) * 100, 2 * maker_fee * 100)


def typical_atr_frac(high: np.ndarray, low: np.ndarray, close: np.ndarray, atr_bars: int) -> float | None:
    """Median over the bars of ATR(atr_bars) / close, the engine's true-range ATR (strategies/atr.py):
    a typical width for an ATR-sized grid that arms somewhere in these candles. None without candles."""
    if len(close) == 0:
        return None
    prev = np.concatenate(([np.nan], close[:-1]))
    tr = np.fmax(high - low, np.fmax(np.abs(high - prev), np.abs(low - prev)))  # fmax: the first bar's nan
    m = min(atr_bars, len(tr))
    sums = np.cumsum(np.concatenate(([0.0], tr)))
    atr = (sums[m:] - sums[:-m]) / m
    return float(np.median(atr / close[m - 1:]))


def grid_profit_problem(g: GridConfig, maker_fee: float, label: str, ref_price: float = 1.0,
                        atr_frac: float | None = None, tick_size: float = 0.0) -> tuple[str, str] | None:
    """(problem, fix) when some grid round trip loses money after fees; None when every cell clears
    them or the range is unknown. The problem names the parameter to change."""
    gp = grid_profit(g, maker_fee, ref_price, atr_frac, tick_size)
    if gp is None or gp.min_pct > 0:
        return None
    if g.range_mode == "fixed":
        name = f"{label}.grid.levels (range {g.lower_price:g}..{g.upper_price:g})"
    elif atr_sized(g):
        name = f"{label}.grid.range_atr_mult (range +/-{g.range_atr_mult:g} x ATR({g.atr_bars}), {g.levels} levels)"
    else:
        name = f"{label}.grid.grid_step_pct"
    profit = _span(gp.min_pct, gp.max_pct, 3)
    step = _span(gp.step_min_pct, gp.step_max_pct, 2)
    if gp.max_pct <= 0:
        problem = (f"{name}: grid profit per round trip after fees is {profit} (step {step} < fees "
                   f"{gp.fees_pct:.2f}%): every grid round trip loses money")
    else:
        problem = (f"{name}: grid profit per round trip after fees is {profit} (step {step}, fees "
                   f"{gp.fees_pct:.2f}%): round trips in the upper cells lose money")
    if atr_sized(g):
        problem += f" (estimated with a typical ATR of {atr_frac * 100:.3f}% of the price)"
    return problem, _fix(g, maker_fee, ref_price, atr_frac, tick_size)


def _fix(g: GridConfig, maker_fee: float, ref_price: float, atr_frac: float | None, tick_size: float) -> str:
    """What clears the fees: the smallest step (grid_step_pct) or ATR multiple (range_atr_mult), or the
    most levels that do (a fixed or ATR-sized range)."""
    def clears(**update: float) -> bool:
        gp = grid_profit(g.model_copy(update=update), maker_fee, ref_price, atr_frac, tick_size)
        return gp is not None and gp.min_pct > 0

    fitting = [n for n in range(g.levels - 1, 1, -1) if clears(levels=n)]
    fewer = f"use fewer levels (at most {fitting[0]} clear the fees)" if fitting else "use fewer levels"
    if g.range_mode == "fixed":
        return f"widen the range or {fewer}" if fitting else "widen the range (even 2 levels lose money in it)"
    # bisect the break-even value up to the config's bound (an arithmetic grid's bottom above 0)
    name, scale = ("range_atr_mult", 100) if atr_sized(g) else ("grid_step_pct", 1000)
    lo = g.range_atr_mult if atr_sized(g) else g.grid_step_pct
    hi = 100.0 if atr_sized(g) else 50.0 if g.spacing == "geometric" else min(50.0, 199.0 / (g.levels - 1))
    if not clears(**{name: hi}):
        return f"raise grid.{name} or {fewer}"
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if clears(**{name: mid}) else (mid, hi)
    least = f"raise grid.{name} to at least {math.ceil(hi * scale) / scale:g}"  # rounded up: it clears
    return f"{least}, or {fewer}" if fitting and atr_sized(g) else least


def _span(lo: float, hi: float, digits: int) -> str:
    return f"{lo:.{digits}f}%" if f"{lo:.{digits}f}" == f"{hi:.{digits}f}" else f"{lo:.{digits}f}% .. {hi:.{digits}f}%"


def atr_sized(g: GridConfig) -> bool:
    """The grid's range is close -/+ range_atr_mult x ATR when it arms: known only from candles."""
    return g.range_mode == "dynamic" and g.range_atr_mult > 0


def has_atr_grid(policy: Policy) -> bool:
    return any(rp.engine == "grid" and atr_sized(rp.grid) for rp in policy.regimes.values())


def losing_grids(policy: Policy, maker_fee: float, where: str = "strategy", ref_price: float = 1.0,
                 atr_frac_of: Callable[[int], float | None] | None = None, tick_size: float = 0.0,
                 only_atr: bool = False) -> list[tuple[str, str]]:
    """(problem, fix) for every grid regime of the policy whose round trips lose money after fees.
    `atr_frac_of(atr_bars)` estimates ATR / close for ATR-sized ranges (None: those are skipped);
    `only_atr` checks those ranges alone (the others need no candles: checked once, not per pair)."""
    out = []
    for rid, rp in sorted(policy.regimes.items()):
        if rp.engine != "grid" or (only_atr and not atr_sized(rp.grid)):
            continue
        label = where if len(policy.regimes) == 1 else f"{where} regime {rid}"
        g = rp.grid
        atr_frac = atr_frac_of(g.atr_bars) if atr_frac_of is not None and atr_sized(g) else None
        found = grid_profit_problem(g, maker_fee, label, ref_price, atr_frac, tick_size)
        if found is not None:
            out.append(found)
    return out


def losing_grids_error(found: list[tuple[str, str]]) -> ConfigError:
    """What refuses real trading (`live.app`; Binance's grid bot refuses such a grid too): one error for
    `losing_grids` findings of one or several pairs, every problem and each fix once."""
    fixes = "; ".join(dict.fromkeys(f for _, f in found))
    return ConfigError("; ".join(dict.fromkeys(p for p, _ in found)),
                       f"{fixes} (paper trading and backtests still run it, with a warning)")
