"""The out-of-sample table: adaptive policy vs static grid vs static DCA vs buy-and-hold on the held-back window.

Every row is scored by the same simulator on the same candles of the held-back window (never seen by
any study), each pair on its own capital slice, and the pairs are added up into one portfolio equity
curve (what the bot would hold), whose return, max drawdown, Sharpe and Calmar the table shows; the
metric definitions are `strategies.metrics`'s. Trades = fills over all pairs. Per-pair figures are
kept too (logged to MLflow). No row is favoured: the table is printed as it comes out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.tune_objective import TuningData, Window
from strategies.metrics import buy_and_hold, metrics_from_stats, new_stats, stats_update
from strategies.policy import Policy, RegimeParams
from strategies.simulator import simulate

ROW_NAMES = ("adaptive policy", "static grid", "static DCA", "buy and hold")
COLUMNS = ("return_pct", "max_drawdown_pct", "sharpe", "calmar", "trades")


@dataclass
class EvalRow:
    name: str
    portfolio: dict[str, float]  # return_pct, max_drawdown_pct, sharpe, calmar, trades, ...
    per_pair: dict[str, dict[str, float]]


def portfolio_metrics(curves: list[tuple[np.ndarray, np.ndarray]], capital: float, bar_ms: int) -> dict[str, float]:
    """Metrics of the summed equity of the pairs, on the bars every pair has (inner join on ts)."""
    common = curves[0][0]
    for ts, _ in curves[1:]:
        common = np.intersect1d(common, ts, assume_unique=True)
    total = np.zeros(len(common))
    for ts, eq in curves:
        total += eq[np.searchsorted(ts, common)]
    st = new_stats(capital * len(curves))
    for v in total:
        stats_update(st, float(v), 0.0, 0.0, 0.0, 0.0, 0.0)
    return metrics_from_stats(st, bar_ms)


def _row(name: str, per_pair: dict[str, dict[str, float]], curves: list[tuple[np.ndarray, np.ndarray]],
         capital: float, bar_ms: int) -> EvalRow:
    m = portfolio_metrics(curves, capital, bar_ms)
    port = {
        "return_pct": 100.0 * m["total_return"],
        "max_drawdown_pct": 100.0 * m["max_drawdown"],
        "sharpe": m["sharpe"],
        "calmar": m["calmar"],
        "sortino": m["sortino"],
        "trades": float(sum(int(p["fills"]) for p in per_pair.values())),
        "bars": float(m["bars"]),
    }
    return EvalRow(name, port, per_pair)


def evaluate_policy(data: TuningData, window: Window, policy: Policy | RegimeParams, name: str,
                    active: dict[str, np.ndarray] | None = None) -> EvalRow:
    """One policy on the window. Adaptive (a Policy): follows the armed-regime series of the out-of-fold
    predictions, or `active` (pair -> armed regime per bar of the pair's span, e.g. another model's);
    static (a RegimeParams): one row, no regimes."""
    per_pair: dict[str, dict[str, float]] = {}
    curves = []
    for pair in data.pairs:
        sl = data.slice(pair, window)
        if sl is None:
            continue
        if isinstance(policy, Policy):  # follows the armed-regime series (see TuningData)
            armed = sl.active
            if active is not None:
                a = int(np.searchsorted(pair.bars.ts, sl.bars.ts[0]))
                armed = np.ascontiguousarray(active[pair.pair][a:a + len(sl.bars)])
            res = simulate(sl.bars, policy.table(), data.rules[pair.pair], data.sim_settings, armed)
        else:
            static = Policy(regimes={0: policy}, min_dwell_bars=0, min_regime_probability=0.0)
            res = simulate(sl.bars, static.table(), data.rules[pair.pair], data.sim_settings)
        per_pair[pair.pair] = res.metrics
        curves.append((sl.bars.ts, res.equity))
    return _row(name, per_pair, curves, data.settings.capital_quote, data.pairs[0].bars.bar_ms)


def evaluate_buy_and_hold(data: TuningData, window: Window) -> EvalRow:
    per_pair: dict[str, dict[str, float]] = {}
    curves = []
    for pair in data.pairs:
        sl = data.slice(pair, window)
        if sl is None:
            continue
        rules = data.rules[pair.pair]
        m, eq = buy_and_hold(sl.bars.open, sl.bars.close, data.settings.capital_quote, rules.lot_size,
                             rules.taker_fee, sl.bars.bar_ms)
        per_pair[pair.pair] = m
        curves.append((sl.bars.ts, eq))
    return _row(ROW_NAMES[3], per_pair, curves, data.settings.capital_quote, data.pairs[0].bars.bar_ms)


def out_of_sample_table(data: TuningData, policy: Policy, static_grid: RegimeParams,
                        static_dca: RegimeParams, window: Window | None = None) -> list[EvalRow]:
    w = window or data.holdout
    return [
        evaluate_policy(data, w, policy, ROW_NAMES[0]),
        evaluate_policy(data, w, static_grid, ROW_NAMES[1]),
        evaluate_policy(data, w, static_dca, ROW_NAMES[2]),
        evaluate_buy_and_hold(data, w),
    ]
