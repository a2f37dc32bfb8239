"""The streamed metrics equal the same definitions computed from the stored curve and fills with numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.config import StrategyConfig
from core.market_rules import default_rules
from strategies.metrics import YEAR_MS, buy_and_hold
from strategies.policy import Policy
from strategies.risk import RunSettings
from strategies.simulator import Bars, simulate, simulate_batch


def oracle(equity: np.ndarray, capital: float, bar_ms: int) -> dict[str, float]:
    curve = np.concatenate([[capital], equity])
    r = curve[1:] / curve[:-1] - 1
    per_year = YEAR_MS / bar_ms
    years = len(equity) * bar_ms / YEAR_MS
    growth = equity[-1] / capital
    cagr = growth ** (1 / years) - 1
    peak = np.maximum.accumulate(curve)
    max_dd = float(np.max(1 - curve / peak))
    return {
        "total_return": growth - 1,
        "cagr": cagr,
        "max_drawdown": max_dd,
        "sharpe": r.mean() / r.std() * math.sqrt(per_year),
        "sortino": r.mean() / math.sqrt(np.mean(np.minimum(r, 0) ** 2)) * math.sqrt(per_year),
        "calmar": cagr / max_dd,
    }


@pytest.mark.parametrize("engine", ["grid", "dca"])
def test_streamed_metrics_match_the_curve(btc_5m, engine):
    candles = btc_5m.iloc[:20_000].reset_index(drop=True)
    rules = default_rules("binance", "BTC/USDT", float(candles["close"].iloc[0]))
    run = RunSettings(capital_quote=800)
    res = simulate(candles, Policy.static(StrategyConfig(), engine), rules, run)
    m, bar_ms = res.metrics, 300_000
    for key, want in oracle(res.equity, run.capital_quote, bar_ms).items():
        assert m[key] == pytest.approx(want, rel=1e-6), key
    f = res.fills
    # buckets hold whole lots and dust stays below one lot: holding <=> at least one lot held
    held = res.inventory >= rules.lot_size * (1 - 1e-9)
    assert m["time_in_market"] == pytest.approx(held.mean(), abs=1e-12)
    assert m["fills"] == len(f) and m["buys"] == int((f["side"] == "buy").sum())
    assert m["fees_quote"] == pytest.approx(f["fee_quote"].sum())
    assert m["turnover_quote"] == pytest.approx((f["price"] * f["qty"]).sum())
    assert m["realized_pnl"] == pytest.approx(f["pnl"].sum())
    assert m["final_inventory_value"] == pytest.approx(res.inventory[-1] * candles["close"].iloc[-1])
    assert m["cycles"] > 0 and 0 <= m["win_rate"] <= 1 and m["profit_factor"] > 0
    assert 0 < m["longest_underwater_bars"] <= len(candles)


def test_batch_equals_single_runs_on_both_cores(btc_5m):
    bars = Bars.from_frame(btc_5m.iloc[:10_000])
    rules = default_rules("binance", "BTC/USDT", float(bars.close[0]))
    run = RunSettings(capital_quote=1000)
    sets = [Policy.static(StrategyConfig.model_validate({"grid": {"grid_step_pct": s, "levels": n}}), "grid")
            for s in (0.2, 0.5, 1.0) for n in (6, 12)]
    batch = simulate_batch(bars, sets, rules, run, n_jobs=2)
    for ps, got in zip(sets, batch, strict=True):
        want = simulate(bars, ps, rules, run).metrics
        assert got.keys() == want.keys()
        assert all(got[k] == want[k] or (got[k] != got[k] and want[k] != want[k]) for k in want)
    assert len({b["final_equity"] for b in batch}) == len(sets)  # the sets really differ


def test_buy_and_hold_baseline(btc_5m):
    c = btc_5m.iloc[:5000]
    m, eq = buy_and_hold(c["open"].to_numpy(), c["close"].to_numpy(), 1000.0, 0.00001, 0.001, 300_000)
    qty = math.floor(1000.0 / c["open"].iloc[0] / 0.00001) * 0.00001
    assert eq[-1] == pytest.approx(1000 - qty * c["open"].iloc[0] + qty * 0.999 * c["close"].iloc[-1])
    assert m["total_return"] == pytest.approx(eq[-1] / 1000 - 1) and m["time_in_market"] == 1.0
