"""The backtest simulator: the engine's per-bar functions in one numba loop, and batch runs on all cores.

Per bar: the orders decided at the previous close fill along the bar's path (`fill_bar`), then the
close decides the next set (`on_close`), then equity = cash + inventory x close enters the running
statistics. No same-bar refills: an order decided at a close rests from the next bar, as live.

`simulate` returns the equity curve, the fills and every metric; `simulate_batch` runs many
parameter sets over the same candles on `n_jobs` threads (the loop releases the GIL) and returns
only the metrics, so a thousand Optuna trials keep no curves in memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.errors import DataError
from core.market_rules import MarketRules
from strategies.atr import atr_push, atr_tracked
from strategies.borrow import borrowed
from strategies.decide import close_is_idle, on_close
from strategies.fills import fill_bar
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
    I_ACTIVE,
    I_BAR,
    I_CAND,
    I_DAY_END_TS,
    I_DAY_PAUSED,
    I_DIRTY,
    I_HAS_MARKET,
    I_KILLED,
    I_LOG_OVERFLOW,
    I_N_FILLS,
    I_N_ORDERS,
    I_NEXT_EVENT_BAR,
    KIND_NAMES,
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
    N_LC,
    S_DAILY_LOSS,
    S_MAX_DD,
    S_MIN_PROB,
)
from strategies.loopstats import stats_load, stats_step, stats_store
from strategies.metrics import new_stats, run_metrics
from strategies.policy import Policy, param_table
from strategies.quiet import quiet_run
from strategies.risk import RunSettings
from strategies.state import EngineState


@engine_jit(nogil=True)
def run_loop(ts: np.ndarray, o: np.ndarray, h: np.ndarray, l: np.ndarray, c: np.ndarray,  # noqa: E741
             regimes: np.ndarray, probs: np.ndarray, params: np.ndarray, rules: np.ndarray, settings: np.ndarray,
             sf: np.ndarray, si: np.ndarray, grid: np.ndarray, legacy: np.ndarray, orders: np.ndarray,
             log: np.ndarray, stats: np.ndarray, equity: np.ndarray, inv_out: np.ndarray,
             active_out: np.ndarray) -> int:
    """Run the engine over every bar; empty `regimes`/`probs` mean regime 0 at probability 1, empty
    `equity` means no curve is kept. Returns the number of fills written to `log`.

    Exact shortcuts keep quiet bars cheap: `quiet_run` consumes runs of bars that reach no resting
    order and whose close is idle, with the state in local scalars; on the other bars fill_bar is
    called only when the bar reaches a resting order (fill_bar's own first test), and on_close only
    when `close_is_idle` says it would change more than the bar counter, the last equity and the peak
    (the per-bar API test checks that this loop and on_close-every-bar end in bit-identical states).
    The running statistics live in scalars too (`loopstats`), stored back into `stats` at the end."""
    record = equity.shape[0] > 0
    max_dd, daily, min_prob = settings[S_MAX_DD], settings[S_DAILY_LOSS], settings[S_MIN_PROB]
    sf, si, grid, legacy, orders = borrowed(sf), borrowed(si), borrowed(grid), borrowed(legacy), borrowed(orders)
    params, rules, settings, log = borrowed(params), borrowed(rules), borrowed(settings), borrowed(log)
    # the candles and curves too: quiet_run takes them at every event bar (inlined, but numba still
    # counts references of array arguments: 18 atomic operations a call with owned arrays)
    ts, o, h, l, c = borrowed(ts), borrowed(o), borrowed(h), borrowed(l), borrowed(c)  # noqa: E741
    regimes, probs, stats = borrowed(regimes), borrowed(probs), borrowed(stats)
    equity, inv_out, active_out = borrowed(equity), borrowed(inv_out), borrowed(active_out)
    track_atr = atr_tracked(params)
    log_n = 0
    st = stats_load(stats)
    i = 0
    while i < ts.shape[0]:
        i, st = quiet_run(i, ts, h, l, c, regimes, probs, sf, si, grid, settings, track_atr, st, record, equity,
                          inv_out, active_out)
        if i >= ts.shape[0]:
            break
        if si[I_N_ORDERS] > 0 and (si[I_HAS_MARKET] == 1 or l[i] <= sf[F_MAX_BUY] or h[i] >= sf[F_MIN_SELL]):
            log_n = fill_bar(sf, si, grid, legacy, orders, params, rules, settings, o[i], h[i], l[i], c[i],
                             log, log_n)
        raw = regimes[i] if regimes.shape[0] > 0 else 0
        prob = probs[i] if probs.shape[0] > 0 else 1.0
        cash, inv = sf[F_CASH], sf[F_INV]
        eq = cash + inv * c[i]
        if close_is_idle(si[I_BAR], si[I_NEXT_EVENT_BAR], si[I_DIRTY], c[i], sf[F_BAND_LO], sf[F_BAND_HI], eq,
                         sf[F_EQ_PEAK], si[I_KILLED], max_dd, ts[i], si[I_DAY_END_TS], si[I_DAY_PAUSED],
                         sf[F_DAY_START_EQ], daily, raw, prob, si[I_ACTIVE], si[I_CAND], min_prob):
            atr_push(sf, si, grid, h[i], l[i], c[i], track_atr)
            si[I_BAR] += 1
            sf[F_LAST_EQ] = eq
            if eq > sf[F_EQ_PEAK]:
                sf[F_EQ_PEAK] = eq
        else:
            on_close(sf, si, grid, legacy, orders, params, rules, settings, ts[i], c[i], raw, prob, h[i], l[i])
        st = stats_step(st, eq, cash, inv, sf[F_INV_COST], (inv - sf[F_DUST]) * c[i], c[i])
        if record:
            equity[i] = eq
            inv_out[i] = inv
            active_out[i] = si[I_ACTIVE]
        i += 1
    stats_store(stats, st)
    return log_n


@dataclass(frozen=True)
class Bars:
    """Candle columns as contiguous arrays (what the numba loop takes), and the bar length."""

    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    bar_ms: int

    @classmethod
    def from_frame(cls, df: pd.DataFrame) -> Bars:
        if len(df) < 2:
            raise DataError(f"a backtest needs at least 2 candles, got {len(df)}",
                            "widen the date range or download more candles")
        ts = np.ascontiguousarray(df["ts"].to_numpy(), dtype=np.int64)
        cols = [np.ascontiguousarray(df[k].to_numpy(), dtype=np.float64) for k in ("open", "high", "low", "close")]
        return cls(ts, *cols, bar_ms=int(np.median(np.diff(ts))))

    def __len__(self) -> int:
        return len(self.ts)


@dataclass
class SimResult:
    metrics: dict[str, float]
    equity: np.ndarray
    inventory: np.ndarray
    active_regime: np.ndarray
    fills: pd.DataFrame
    state: EngineState


_EMPTY_I = np.empty(0, dtype=np.int64)
_EMPTY_F = np.empty(0, dtype=np.float64)


def _inputs(policy: Policy | np.ndarray, settings: RunSettings, n_bars: int, regimes: np.ndarray | None,
            probs: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    if isinstance(policy, Policy):
        settings = policy.settings_for(settings)
        table = policy.table()
    else:
        table = param_table(policy)
    reg = _EMPTY_I if regimes is None else np.ascontiguousarray(regimes, dtype=np.int64)
    pr = _EMPTY_F if probs is None else np.ascontiguousarray(probs, dtype=np.float64)
    for name, arr in (("regimes", reg), ("probs", pr)):
        if arr.shape[0] not in (0, n_bars):
            raise DataError(f"{name} has {arr.shape[0]} values for {n_bars} candles", f"give one {name} value per candle")
    if reg.shape[0] and (reg.min() < -1 or reg.max() >= table.shape[0]):
        raise DataError(f"regime ids must lie in -1..{table.shape[0] - 1} (the policy's rows), "
                        f"got {reg.min()}..{reg.max()}", "use the policy the model was trained with")
    return table, settings.as_array(), reg, pr


def simulate(candles: pd.DataFrame | Bars, policy: Policy | np.ndarray, rules: MarketRules, settings: RunSettings,
             regimes: np.ndarray | None = None, probs: np.ndarray | None = None) -> SimResult:
    """Backtest one pair: equity curve, fills and metrics."""
    bars = candles if isinstance(candles, Bars) else Bars.from_frame(candles)
    n = len(bars)
    table, sets, reg, pr = _inputs(policy, settings, n, regimes, probs)
    capacity = max(1024, n // 8)
    while True:
        state = EngineState.new(settings.capital_quote)
        stats = new_stats(settings.capital_quote)
        log = np.zeros((capacity, N_LC))
        equity, inv, active = np.empty(n), np.empty(n), np.empty(n, dtype=np.int64)
        log_n = run_loop(bars.ts, bars.open, bars.high, bars.low, bars.close, reg, pr, table, rules.as_array(), sets,
                         state.sf, state.si, state.grid, state.legacy, state.orders, log, stats, equity, inv, active)
        if not state.si[I_LOG_OVERFLOW]:
            break
        capacity = int(state.si[I_N_FILLS]) + 16  # the exact count is known now; run once more
    return SimResult(run_metrics(stats, state.sf, state.si, bars.bar_ms), equity, inv, active,
                     fills_frame(log[:log_n], bars.ts), state)


_KIND_STR = pd.array(list(KIND_NAMES), dtype="str")
_SIDE_STR = pd.array(["sell", "buy"], dtype="str")


def fills_frame(log: np.ndarray, ts: np.ndarray) -> pd.DataFrame:
    # one compact column-major copy of the used rows; the frame's float columns are views of it
    # (no second copy per column, and nothing of the log's spare capacity stays referenced)
    log = np.ascontiguousarray(log.T).T
    bar = log[:, L_BAR].astype(np.int64)
    if len(bar):  # string columns taken from two tiny string arrays: no Python object per fill
        side = _SIDE_STR.take((log[:, L_SIDE] > 0).astype(np.int64))
        kind = _KIND_STR.take(log[:, L_KIND].astype(np.int64))
    else:
        side, kind = np.where(log[:, L_SIDE] > 0, "buy", "sell"), np.asarray(KIND_NAMES, dtype=object)[bar]
    return pd.DataFrame({
        "bar": bar,
        "ts": ts[bar] if len(bar) else np.empty(0, dtype=np.int64),
        "t": log[:, L_T],
        "side": side,
        "kind": kind,
        "ref": log[:, L_REF].astype(np.int64),
        "price": log[:, L_PRICE],
        "qty": log[:, L_QTY],
        "fee_quote": log[:, L_FEE_QUOTE],
        "pnl": log[:, L_PNL],
        "cash_after": log[:, L_CASH],
        "inventory_after": log[:, L_INV],
        "avg_entry_after": log[:, L_AVG_ENTRY],
        "taker": log[:, L_TAKER] > 0.5,
        "regime": log[:, L_REGIME].astype(np.int64),
    }, copy=False)


def _one(bars: Bars, table: np.ndarray, rules_arr: np.ndarray, sets: np.ndarray, capital: float,
         reg: np.ndarray, pr: np.ndarray) -> dict[str, float]:
    state = EngineState.new(capital)
    stats = new_stats(capital)
    no_log = np.zeros((0, N_LC))
    run_loop(bars.ts, bars.open, bars.high, bars.low, bars.close, reg, pr, table, rules_arr, sets,
             state.sf, state.si, state.grid, state.legacy, state.orders, no_log, stats, _EMPTY_F, _EMPTY_F, _EMPTY_I)
    return run_metrics(stats, state.sf, state.si, bars.bar_ms)


def simulate_batch(candles: pd.DataFrame | Bars, param_sets: Sequence[Policy | np.ndarray], rules: MarketRules,
                   settings: RunSettings, regimes: np.ndarray | None = None, probs: np.ndarray | None = None,
                   n_jobs: int = 2) -> list[dict[str, float]]:
    """Metrics of every parameter set over the same candles, `n_jobs` threads (numba releases the GIL)."""
    bars = candles if isinstance(candles, Bars) else Bars.from_frame(candles)
    rules_arr = rules.as_array()
    jobs = [_inputs(ps, settings, len(bars), regimes, probs) for ps in param_sets]
    if n_jobs <= 1 or len(jobs) <= 1:
        return [_one(bars, t, rules_arr, s, settings.capital_quote, r, p) for t, s, r, p in jobs]
    with ThreadPoolExecutor(max_workers=n_jobs) as pool:
        return list(pool.map(lambda j: _one(bars, j[0], rules_arr, j[1], settings.capital_quote, j[2], j[3]), jobs))
