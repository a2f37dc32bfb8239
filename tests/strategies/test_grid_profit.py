"""Profit per grid round trip after fees: hand computations, the engine's own round trip, the warnings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.config import GridConfig, config_from_dict
from core.errors import ConfigError
from core.market_rules import default_rules
from strategies.grid_profit import (
    grid_profit,
    grid_profit_problem,
    losing_grids,
    losing_grids_error,
    typical_atr_frac,
)
from strategies.policy import Policy, RegimeParams
from strategies.risk import RunSettings
from strategies.simulator import simulate

FEE = 0.001  # 0.1% maker, both legs


def fixed(lo: float, hi: float, levels: int, spacing: str = "arithmetic", **kw) -> GridConfig:
    return GridConfig(range_mode="fixed", lower_price=lo, upper_price=hi, levels=levels, spacing=spacing, **kw)


def test_arithmetic_fixed_grid_by_hand():
    # levels 100, 105, 110: the bottom cell gains 5/100, the top one 5/105; each leg keeps 99.9%
    gp = grid_profit(fixed(100, 110, 3), FEE)
    assert gp.max_pct == pytest.approx((0.999 * 0.999 * 105 / 100 - 1) * 100, rel=1e-12)  # 4.790105%
    assert gp.max_pct == pytest.approx(4.790105, abs=1e-9)
    assert gp.min_pct == pytest.approx((0.999 * 0.999 * 110 / 105 - 1) * 100, rel=1e-12)  # 4.5525...%
    assert (gp.step_min_pct, gp.step_max_pct) == pytest.approx((100 * 5 / 105, 5.0))
    assert gp.fees_pct == pytest.approx(0.2)


def test_geometric_fixed_grid_by_hand_is_the_same_in_every_cell():
    gp = grid_profit(fixed(100, 121, 3, "geometric"), FEE)  # 100, 110, 121: ratio 1.1 everywhere
    assert gp.min_pct == pytest.approx(gp.max_pct, abs=1e-12)
    assert gp.min_pct == pytest.approx(9.78011, abs=1e-9)  # 0.998001 x 1.1 - 1


def test_dynamic_step_grids_by_hand():
    # arithmetic, 1% of the close apart around it: levels 0.99, 1.00, 1.01 x close
    gp = grid_profit(GridConfig(spacing="arithmetic", grid_step_pct=1.0, levels=3), FEE)
    assert gp.max_pct == pytest.approx((0.998001 / 0.99 - 1) * 100, abs=1e-9)
    assert gp.min_pct == pytest.approx(0.798101, abs=1e-9)  # 0.998001 x 1.01 - 1
    gp = grid_profit(GridConfig(spacing="geometric", grid_step_pct=0.5, levels=20), FEE)
    assert gp.min_pct == pytest.approx(0.2991005, abs=1e-9) and gp.max_pct == pytest.approx(gp.min_pct)


def test_atr_range_needs_an_atr_and_keeps_the_engines_two_tick_floor():
    g = GridConfig(spacing="geometric", levels=3, range_atr_mult=2.0)
    assert grid_profit(g, FEE) is None  # known only when the grid arms
    gp = grid_profit(g, FEE, ref_price=100.0, atr_frac=0.01)  # close -/+ 2%: ratio sqrt(1.02 / 0.98)
    assert gp.min_pct == pytest.approx((0.998001 * (1.02 / 0.98) ** 0.5 - 1) * 100, abs=1e-9)
    # a tick of 1 at price 100: half-width at least 2 x 2 ticks = 4%, more than 2 x ATR = 2%
    gp = grid_profit(g, FEE, ref_price=100.0, atr_frac=0.01, tick_size=1.0)
    assert gp.min_pct == pytest.approx((0.998001 * (1.04 / 0.96) ** 0.5 - 1) * 100, abs=1e-9)


def test_typical_atr_frac_is_the_engines_true_range_mean_over_the_close():
    close = np.array([100.0, 100.0, 102.0, 102.0])
    high, low = close + 1.0, close - 1.0
    # true ranges: 2 (first bar: high - low), 2, max(2, |103 - 100|) = 3, 2; ATR(2): 2, 2.5, 2.5
    want = np.median([2 / 100, 2.5 / 102, 2.5 / 102])
    assert typical_atr_frac(high, low, close, 2) == pytest.approx(want, rel=1e-12)
    assert typical_atr_frac(high, low, close, 50) == pytest.approx(2.25 / 102, rel=1e-12)  # fewer bars: all
    assert typical_atr_frac(high[:0], low[:0], close[:0], 3) is None


@pytest.mark.parametrize("upper", [101.0, 100.1])
def test_the_engines_round_trip_earns_what_grid_profit_says(upper):
    """One cell, buy at 100 and sell at `upper`, through the simulator: the cash it makes is the order's
    cost x profit per grid (1% step: a gain; 0.1% step, below the 0.2% fees: a loss)."""
    rules = default_rules("binance", "XYZ/USDT", 100.0)
    g = fixed(100.0, upper, 2, order_size_quote=10_000.0, trailing_up=False)
    bars = pd.DataFrame({"ts": np.arange(4, dtype=np.int64) * 300_000,
                         "open": [100.5, 100.5, 100.05, 100.05], "high": [100.6, 100.6, upper + 0.5, 100.06],
                         "low": [100.4, 99.5, 100.01, 100.04], "close": [100.5, 100.05, 100.05, 100.05]})
    res = simulate(bars, Policy.single(RegimeParams(engine="grid", grid=g)), rules, RunSettings(capital_quote=20_000))
    assert list(res.fills["kind"]) == ["grid_buy", "grid_sell"]
    cost = float(res.fills["qty"].iloc[0]) * 100.0
    made = res.state.sf[0] - 20_000.0
    # the sell is the bought lots after the fee, truncated to the lot: at most one lot less is sold
    assert made == pytest.approx(cost * grid_profit(g, rules.maker_fee).min_pct / 100, abs=rules.lot_size * upper)
    assert (made < 0) == (upper == 100.1)


def test_a_too_fine_range_is_named_with_its_levels_and_a_fix_that_clears_the_fees():
    g = fixed(29_000, 29_300, 12)
    problem, fix = grid_profit_problem(g, FEE, "strategy")
    assert problem.startswith("strategy.grid.levels (range 29000..29300): grid profit per round trip after fees")
    assert "every grid round trip loses money" in problem and "< fees 0.20%" in problem
    assert fix == "widen the range or use fewer levels (at most 6 clear the fees)"
    assert grid_profit(g.model_copy(update={"levels": 6}), FEE).min_pct > 0
    assert grid_profit(g.model_copy(update={"levels": 7}), FEE).min_pct <= 0


def test_a_too_small_step_is_named_with_the_step_that_clears_the_fees():
    g = GridConfig(spacing="arithmetic", grid_step_pct=0.1, levels=20)
    problem, fix = grid_profit_problem(g, FEE, "strategy")
    assert problem.startswith("strategy.grid.grid_step_pct: grid profit per round trip after fees is -0.101% .. -0.099%")
    assert fix == "raise grid.grid_step_pct to at least 0.204"
    assert grid_profit(g.model_copy(update={"grid_step_pct": 0.204}), FEE).min_pct > 0
    assert grid_profit(g.model_copy(update={"grid_step_pct": 0.203}), FEE).min_pct <= 0  # and not more than needed


def test_an_arithmetic_grid_losing_only_at_the_top_says_so():
    # steps of 0.25: 0.25% of the price at the bottom (clears 0.2% of fees), 0.125% at the top (does not)
    problem, fix = grid_profit_problem(fixed(100, 200, 401), FEE, "s")
    assert "round trips in the upper cells lose money" in problem and "(step 0.13% .. 0.25%, fees 0.20%)" in problem
    assert fix.startswith("widen the range or use fewer levels")


def test_normal_grids_do_not_warn():
    assert grid_profit_problem(GridConfig(), FEE, "strategy") is None  # the default: 0.5% geometric
    assert grid_profit_problem(fixed(25_000, 35_000, 20), FEE, "strategy") is None
    pol = Policy(regimes={0: RegimeParams(engine="grid"), 1: RegimeParams(engine="dca")})
    assert losing_grids(pol, FEE) == []


def test_policy_regimes_are_labelled_and_atr_ranges_use_the_estimate():
    fine = RegimeParams(engine="grid", grid=GridConfig(levels=12, range_atr_mult=3.0))
    pol = Policy(regimes={0: RegimeParams(engine="dca"), 1: fine})
    assert losing_grids(pol, FEE, "policy p") == []  # ATR range, no estimate: skipped
    found = losing_grids(pol, FEE, "policy p", 30_000.0, lambda n: 0.0015, 0.01)
    assert len(found) == 1
    assert found[0][0].startswith("policy p regime 1.grid.range_atr_mult (range +/-3 x ATR(14), 12 levels): ")
    assert "typical ATR of 0.150% of the price" in found[0][0]
    assert found[0][1] == "raise grid.range_atr_mult to at least 7.34, or use fewer levels (at most 5 clear the fees)"


def test_the_atr_fix_is_the_smallest_multiple_that_clears_the_fees():
    g = GridConfig(levels=12, range_atr_mult=3.0)
    _, fix = grid_profit_problem(g, FEE, "strategy", 30_000.0, 0.0015, 0.01)
    assert fix.startswith("raise grid.range_atr_mult to at least 7.34,")
    assert grid_profit(g.model_copy(update={"range_atr_mult": 7.34}), FEE, 30_000.0, 0.0015, 0.01).min_pct > 0
    assert grid_profit(g.model_copy(update={"range_atr_mult": 7.33}), FEE, 30_000.0, 0.0015, 0.01).min_pct <= 0
    assert grid_profit(g.model_copy(update={"levels": 5}), FEE, 30_000.0, 0.0015, 0.01).min_pct > 0
    assert grid_profit(g.model_copy(update={"levels": 6}), FEE, 30_000.0, 0.0015, 0.01).min_pct <= 0


def test_real_trading_refuses_a_grid_below_the_fees(monkeypatch, tmp_path):
    from live.app import LiveOptions, build_runner

    monkeypatch.setenv("AIOTRADE_BINANCE_KEY", "k" * 12)
    monkeypatch.setenv("AIOTRADE_BINANCE_SECRET", "s" * 12)
    cfg = config_from_dict({"strategy": {"grid": {"grid_step_pct": 0.15}}})
    opts = LiveOptions(live=True, confirmed=True, static=True, state_db=str(tmp_path / "s.db"))
    with pytest.raises(ConfigError) as e:
        build_runner(cfg, opts)
    assert e.value.problem.startswith("strategy.grid.grid_step_pct: grid profit per round trip after fees is")
    assert "raise grid.grid_step_pct to at least 0.201" in e.value.fix
    assert not (tmp_path / "s.db").exists()  # refused before any state or venue was opened


def test_one_error_for_several_pairs_names_every_problem_and_each_fix_once():
    pol = Policy(regimes={0: RegimeParams(engine="grid", grid=GridConfig(levels=12, range_atr_mult=3.0))})
    found = [(f"{pair}: {p}", f) for pair, atr in (("BTC/USDT", 0.0015), ("ETH/USDT", 0.0015))
             for p, f in losing_grids(pol, FEE, "strategy", 30_000.0, lambda n, a=atr: a, 0.01)]
    err = losing_grids_error(found)
    assert isinstance(err, ConfigError)
    assert err.problem.count("strategy.grid.range_atr_mult") == 2 and err.problem.startswith("BTC/USDT: ")
    assert "; ETH/USDT: strategy.grid.range_atr_mult" in err.problem
    assert err.fix.count("raise grid.range_atr_mult to at least 7.34") == 1
    assert err.fix.endswith("(paper trading and backtests still run it, with a warning)")
