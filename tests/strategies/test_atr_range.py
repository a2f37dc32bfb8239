"""The ATR-sized dynamic grid range (grid.range_atr_mult, grid.atr_bars): value at arming, waiting for
the ATR's bars, trailing up, clamping, k = 0 unchanged, and bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from core.config import GridConfig, StrategyConfig, load_config
from core.errors import ConfigError
from core.market_rules import MarketRules, default_rules
from strategies.engine import Engine
from strategies.layout import F_G_LO, F_G_STEP, G_BUY_PX, I_G_CELLS, N_PARAMS, P_G_ATR_BARS
from strategies.policy import Policy, RegimeParams, check_funds, load_policy_file
from strategies.risk import RunSettings
from strategies.simulator import simulate

RUN = RunSettings(capital_quote=2000.0, max_exposure_pct=100.0, max_drawdown_pct=0.0, daily_loss_limit_pct=0.0)
BAR_MS = 300_000


def atr_policy(**kw) -> Policy:
    g = dict(spacing="arithmetic", levels=10, order_size_quote=20.0, range_atr_mult=2.5, atr_bars=14)
    g.update(kw)
    return Policy.single(RegimeParams(engine="grid", grid=GridConfig(**g)))


def hand_atr(c: pd.DataFrame, last: int, n: int) -> float:
    """Mean true range of bars last-n+1..last, written out bar by bar."""
    trs = []
    for i in range(last - n + 1, last + 1):
        h, lo = c["high"].iloc[i], c["low"].iloc[i]
        tr = h - lo
        if i > 0:
            prev = c["close"].iloc[i - 1]
            tr = max(tr, abs(h - prev), abs(lo - prev))
        trs.append(tr)
    return sum(trs) / n


def steps(eng: Engine, c: pd.DataFrame, upto: int, regimes=None) -> None:
    for i in range(upto + 1):
        r = c.iloc[i]
        eng.step(int(r.ts), r.open, r.high, r.low, r.close, 0 if regimes is None else int(regimes[i]))


@pytest.mark.parametrize("spacing", ["arithmetic", "geometric"])
def test_range_at_a_regime_switch_is_close_plus_minus_k_atr_of_the_closed_bars(btc_5m, spacing):
    c = btc_5m.iloc[5000:5200].reset_index(drop=True)
    rules = default_rules("binance", "BTC/USDT", float(c["close"].iloc[0]))
    pol = Policy(regimes={0: RegimeParams(engine="none"), 1: atr_policy(spacing=spacing).regimes[0]},
                 min_dwell_bars=0, min_regime_probability=0.0)
    regimes = np.where(np.arange(len(c)) < 60, 0, 1)  # the grid arms at the close of bar 60
    eng = Engine(pol, rules, RUN)
    steps(eng, c, 59, regimes)
    assert eng.state.si[I_G_CELLS] == 0
    steps_from = c.iloc[60]
    eng.step(int(steps_from.ts), steps_from.open, steps_from.high, steps_from.low, steps_from.close, 1)
    atr = hand_atr(c, 60, 14)
    assert 0.0005 < atr / c["close"].iloc[60] < 0.01  # a real 5m ATR, not a clamp
    close = float(c["close"].iloc[60])
    lo, hi = close - 2.5 * atr, close + 2.5 * atr
    s = eng.state.sf
    assert s[F_G_LO] == pytest.approx(lo, rel=1e-12)
    top = s[F_G_LO] + 9 * s[F_G_STEP] if spacing == "arithmetic" else s[F_G_LO] * s[F_G_STEP] ** 9
    assert top == pytest.approx(hi, rel=1e-12)
    assert eng.state.si[I_G_CELLS] == 9
    # The simulator arms the same grid from the same bars; the bars after 60 do not enter (no lookahead).
    later = c.copy()
    later.loc[61:, ["high"]] *= 1.05
    later.loc[61:, ["low"]] *= 0.95
    for frame in (c.iloc[:61], later.iloc[:61]):
        res = simulate(frame, pol, rules, RUN, regimes[:61])
        assert res.state.sf[F_G_LO] == s[F_G_LO] and res.state.sf[F_G_STEP] == s[F_G_STEP]


def test_a_static_atr_grid_waits_for_atr_bars_closed_bars(btc_5m):
    c = btc_5m.iloc[:100].reset_index(drop=True)
    rules = default_rules("binance", "BTC/USDT", float(c["close"].iloc[0]))
    eng = Engine(atr_policy(atr_bars=20), rules, RUN)
    steps(eng, c, 18)
    assert eng.desired_orders() == [] and eng.state.si[I_G_CELLS] == 0  # 19 bars: no ATR(20) yet
    steps(eng, c.iloc[19:20].reset_index(drop=True).assign(ts=c["ts"].iloc[19]), 0)
    assert eng.state.si[I_G_CELLS] == 9 and len(eng.desired_orders()) > 0
    assert eng.state.sf[F_G_LO] == pytest.approx(c["close"].iloc[19] - 2.5 * hand_atr(c, 19, 20), rel=1e-12)
    res = simulate(c, atr_policy(atr_bars=20), rules, RUN)
    assert res.metrics["fills"] > 0 and (res.fills["bar"] >= 20).all()  # orders rest from bar 20


def test_trailing_up_keeps_the_atr_width():
    rules = MarketRules("X/USDT", tick_size=0.01, lot_size=0.001, min_qty=0.001, min_notional=5.0)
    eng = Engine(atr_policy(levels=5, atr_bars=3, range_atr_mult=2.0, trailing_up=True), rules, RUN)
    bars = [(100, 101, 99, 100), (100, 101, 99, 100), (100, 101, 99, 100)]  # TR 2 each: ATR 2, range 96..104
    for i, b in enumerate(bars):
        eng.step(i * BAR_MS, *b)
    assert eng.state.sf[F_G_LO] == pytest.approx(96.0) and eng.state.sf[F_G_STEP] == pytest.approx(2.0)
    # A rally on wide bars (ATR now far above 2) leaves the top: the grid moves up by whole steps.
    for i, b in enumerate([(100, 110, 99, 109), (109, 120, 108, 119)], start=3):
        eng.step(i * BAR_MS, *b)
    lo, step = eng.state.sf[F_G_LO], eng.state.sf[F_G_STEP]
    # up 7 steps (the top level 118 is one step below the close 119), same step: the same width 4 x 2 = 8
    assert lo == pytest.approx(110.0) and step == pytest.approx(2.0)
    grid = eng.state.grid
    assert grid[4, G_BUY_PX] - grid[0, G_BUY_PX] == pytest.approx(8.0)


def test_the_half_width_is_clamped_to_two_ticks_a_level_and_half_the_close():
    rules = MarketRules("X/USDT", tick_size=0.01, lot_size=0.001, min_qty=0.001, min_notional=5.0)
    flat = Engine(atr_policy(levels=5, atr_bars=2, range_atr_mult=3.0), rules, RUN)
    for i in range(2):
        flat.step(i * BAR_MS, 100, 100, 100, 100)  # ATR 0
    # half-width 2 x (levels - 1) ticks = 0.08: arithmetic levels 0.04 apart, four ticks
    assert flat.state.sf[F_G_LO] == pytest.approx(99.92) and flat.state.sf[F_G_STEP] == pytest.approx(0.04)
    prices = flat.state.grid[:5, G_BUY_PX]
    assert len(set(prices)) == 5
    wide = Engine(atr_policy(levels=5, atr_bars=2, range_atr_mult=100.0, spacing="geometric"), rules, RUN)
    for i in range(2):
        wide.step(i * BAR_MS, 100, 110, 90, 100)  # ATR 20 x 100: capped at half the close
    assert wide.state.sf[F_G_LO] == pytest.approx(50.0)
    assert wide.state.sf[F_G_LO] * wide.state.sf[F_G_STEP] ** 4 == pytest.approx(150.0)


def test_k_zero_is_the_grid_step_range_and_an_old_table_runs_unchanged(btc_5m):
    c = btc_5m.iloc[:3000].reset_index(drop=True)
    rules = default_rules("binance", "BTC/USDT", float(c["close"].iloc[0]))
    base = Policy.static(StrategyConfig(), "grid")
    off = Policy.single(RegimeParams(engine="grid", grid=StrategyConfig().grid.model_copy(update={"atr_bars": 50})))
    assert base.table()[0, P_G_ATR_BARS] == 14 and off.table()[0, P_G_ATR_BARS] == 50
    a, b = simulate(c, base, rules, RUN), simulate(c, off, rules, RUN)
    old_table = base.table()[:, :21]  # a table saved before the ATR columns existed
    d = simulate(c, old_table, rules, RUN)
    assert a.metrics["fills"] > 10
    for other in (b, d):
        assert other.fills.equals(a.fills) and np.array_equal(other.equity, a.equity)
    with pytest.raises(ConfigError, match="parameter table"):
        simulate(c, np.zeros((1, N_PARAMS + 1)), rules, RUN)


@pytest.mark.parametrize(("grid", "name"), [
    ({"range_atr_mult": -1.0}, "range_atr_mult"),
    ({"range_atr_mult": 2.0, "atr_bars": 0}, "atr_bars"),
    ({"range_atr_mult": 2.0, "atr_bars": 501}, "atr_bars"),
    ({"range_atr_mult": 2.0, "range_mode": "fixed", "lower_price": 1.0, "upper_price": 2.0}, "range_atr_mult"),
])
def test_bad_atr_settings_name_the_parameter(tmp_path, grid, name):
    with pytest.raises(ValidationError, match=name):
        GridConfig(**grid)
    lines = [f"{k} = {v!r}".replace("'", '"') for k, v in grid.items()]
    path = tmp_path / "policy.toml"
    path.write_text("[regimes.0]\nengine = \"grid\"\n[regimes.0.grid]\n" + "\n".join(lines) + "\n")
    with pytest.raises(ConfigError) as e:
        load_policy_file(path)
    assert "regimes.0.grid" in str(e.value) and name in str(e.value)
    cfg = tmp_path / "config.toml"
    cfg.write_text("[strategy.grid]\n" + "\n".join(lines) + "\n")
    with pytest.raises(ConfigError) as e:
        load_config(cfg)
    assert "strategy.grid" in str(e.value) and name in str(e.value)


def test_too_many_levels_for_the_atr_range_at_this_price_is_refused():
    rules = MarketRules("X/USDT", tick_size=0.01, lot_size=1.0, min_qty=1.0, min_notional=1.0)
    pol = atr_policy(levels=40, order_size_quote=5.0)  # 2 x 39 ticks = 0.78 > half of 1.2
    with pytest.raises(ConfigError, match=r"strategy\.grid\.levels: 40 levels") as e:
        check_funds(pol, rules, RunSettings(capital_quote=1000.0), ref_price=1.2)
    assert e.value.fix == "use fewer levels"
    check_funds(pol, rules, RunSettings(capital_quote=1000.0), ref_price=2.0)  # fits at a higher price
