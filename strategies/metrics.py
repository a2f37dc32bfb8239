"""Trading metrics, accumulated bar by bar inside the numba loop (so batch runs keep no equity curve).

Definitions (returns are simple per-bar returns of equity = cash + inventory x close):
- total_return = final / initial equity - 1;  cagr = (final / initial) ** (1 / years) - 1,
  years = bars x bar length / 365.25 days
- max_drawdown = largest fall from a running equity peak, as a fraction of that peak
- sharpe = mean / std of bar returns x sqrt(bars per year) (population std; risk-free rate 0)
- sortino = mean / sqrt(mean(min(r, 0)^2)) x sqrt(bars per year);  calmar = cagr / max_drawdown
- cycles = finished round trips (a grid cell bought and sold, a DCA cycle closed, a legacy exit
  filled); win_rate = cycles with PnL > 0 / cycles; profit_factor = gross profit / gross loss of cycles
- time_in_market = share of bars holding inventory (dust excluded)
- longest_underwater_bars = longest run of bars whose inventory was worth less than it cost
Undefined ratios (no losses, no drawdown, flat equity) are nan, never a made-up number.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from core.market_rules import amount_to_lot
from strategies.layout import (
    F_CASH,
    F_DUST,
    F_FEES,
    F_GROSS_LOSS,
    F_GROSS_PROFIT,
    F_INV,
    F_REALIZED,
    F_TURNOVER,
    I_N_BLOCKED,
    I_N_BUYS,
    I_N_CYCLES,
    I_N_DECISIONS,
    I_N_FILLS,
    I_N_REJECTED,
    I_N_SELLS,
    I_N_SWITCHES,
    I_N_WINS,
)

ST_N = 0
ST_EQ0 = 1
ST_EQ_PREV = 2
ST_SUM_R = 3
ST_SUM_R2 = 4
ST_SUM_D2 = 5
ST_PEAK = 6
ST_MAX_DD = 7
ST_IN_MKT = 8
ST_UW_RUN = 9
ST_UW_MAX = 10
ST_MIN_CASH = 11
ST_MIN_INV = 12
ST_LAST_CLOSE = 13
N_ST = 14

YEAR_MS = 365.25 * 86_400_000


def new_stats(initial_equity: float) -> np.ndarray:
    st = np.zeros(N_ST, dtype=np.float64)
    st[ST_EQ0] = st[ST_EQ_PREV] = st[ST_PEAK] = initial_equity
    st[ST_MIN_CASH] = st[ST_MIN_INV] = np.inf
    return st


@nb.njit(cache=True, inline="always")
def stats_update(st: np.ndarray, equity: float, cash: float, inv: float, inv_cost: float, held_value: float,
                 close: float) -> None:
    """One bar's equity into the running statistics."""
    r = equity / st[ST_EQ_PREV] - 1.0 if st[ST_EQ_PREV] > 0.0 else 0.0
    st[ST_N] += 1.0
    st[ST_SUM_R] += r
    st[ST_SUM_R2] += r * r
    if r < 0.0:
        st[ST_SUM_D2] += r * r
    st[ST_EQ_PREV] = equity
    if equity > st[ST_PEAK]:
        st[ST_PEAK] = equity
    dd = 1.0 - equity / st[ST_PEAK]
    if dd > st[ST_MAX_DD]:
        st[ST_MAX_DD] = dd
    if inv_cost > 0.0:
        st[ST_IN_MKT] += 1.0
        if held_value < inv_cost:
            st[ST_UW_RUN] += 1.0
            if st[ST_UW_RUN] > st[ST_UW_MAX]:
                st[ST_UW_MAX] = st[ST_UW_RUN]
        else:
            st[ST_UW_RUN] = 0.0
    else:
        st[ST_UW_RUN] = 0.0
    if cash < st[ST_MIN_CASH]:
        st[ST_MIN_CASH] = cash
    if inv < st[ST_MIN_INV]:
        st[ST_MIN_INV] = inv
    st[ST_LAST_CLOSE] = close


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else float("nan")


def metrics_from_stats(st: np.ndarray, bar_ms: int) -> dict[str, float]:
    """The return and risk metrics of a finished run (engine counters are added by `run_metrics`)."""
    n, eq0, eq = st[ST_N], st[ST_EQ0], st[ST_EQ_PREV]
    bars_per_year = YEAR_MS / bar_ms
    years = n * bar_ms / YEAR_MS
    growth = eq / eq0
    mean = st[ST_SUM_R] / n if n else 0.0
    var = st[ST_SUM_R2] / n - mean * mean if n else 0.0
    std = math.sqrt(var) if var > 1e-30 else 0.0
    down = math.sqrt(st[ST_SUM_D2] / n) if n else 0.0
    cagr = growth ** (1.0 / years) - 1.0 if years > 0 and growth > 0 else (-1.0 if growth <= 0 else float("nan"))
    max_dd = st[ST_MAX_DD]
    return {
        "final_equity": float(eq),
        "total_return": float(growth - 1.0),
        "cagr": float(cagr),
        "max_drawdown": float(max_dd),
        "sharpe": _ratio(mean, std) * math.sqrt(bars_per_year),
        "sortino": _ratio(mean, down) * math.sqrt(bars_per_year),
        "calmar": _ratio(cagr, max_dd),
        "time_in_market": float(st[ST_IN_MKT] / n) if n else 0.0,
        "longest_underwater_bars": int(st[ST_UW_MAX]),
        "longest_underwater_days": float(st[ST_UW_MAX] * bar_ms / 86_400_000),
        "bars": int(n),
        "min_cash": float(st[ST_MIN_CASH]),
        "min_inventory": float(st[ST_MIN_INV]),
    }


def run_metrics(st: np.ndarray, sf: np.ndarray, si: np.ndarray, bar_ms: int) -> dict[str, float]:
    """Every metric of an engine run: returns/risk from the stats, trading figures from the state."""
    m = metrics_from_stats(st, bar_ms)
    cycles = int(si[I_N_CYCLES])
    gross_loss = float(sf[F_GROSS_LOSS])
    m.update(
        profit_factor=(float(sf[F_GROSS_PROFIT]) / gross_loss if gross_loss > 0
                       else (float("inf") if sf[F_GROSS_PROFIT] > 0 else float("nan"))),
        win_rate=float(si[I_N_WINS]) / cycles if cycles else float("nan"),
        fills=int(si[I_N_FILLS]),
        buys=int(si[I_N_BUYS]),
        sells=int(si[I_N_SELLS]),
        cycles=cycles,
        fees_quote=float(sf[F_FEES]),
        turnover_quote=float(sf[F_TURNOVER]),
        realized_pnl=float(sf[F_REALIZED]),
        final_cash=float(sf[F_CASH]),
        final_inventory=float(sf[F_INV]),
        final_dust=float(sf[F_DUST]),
        final_inventory_value=float(sf[F_INV] * st[ST_LAST_CLOSE]),
        rejected_orders=int(si[I_N_REJECTED]),
        blocked_entries=int(si[I_N_BLOCKED]),
        regime_switches=int(si[I_N_SWITCHES]),
        decisions=int(si[I_N_DECISIONS]),
    )
    return m


def buy_and_hold(open_: np.ndarray, close: np.ndarray, capital: float, lot: float, taker_fee: float,
                 bar_ms: int) -> tuple[dict[str, float], np.ndarray]:
    """The baseline: all of the pair's capital bought at market at the first open, held to the end."""
    qty = float(amount_to_lot(capital / open_[0], lot))
    cash = capital - qty * open_[0]
    held = qty * (1.0 - taker_fee)
    equity = cash + held * close
    st = new_stats(capital)
    for i in range(len(close)):
        stats_update(st, equity[i], cash, held, qty * open_[0], held * close[i], close[i])
    m = metrics_from_stats(st, bar_ms)
    m.update(profit_factor=float("nan"), win_rate=float("nan"), fills=1, buys=1, sells=0, cycles=0,
             fees_quote=qty * open_[0] * taker_fee, turnover_quote=qty * open_[0], realized_pnl=0.0,
             final_cash=cash, final_inventory=held, final_dust=0.0,
             final_inventory_value=held * float(close[-1]), rejected_orders=0, blocked_entries=0,
             regime_switches=0, decisions=1)
    return m, equity
