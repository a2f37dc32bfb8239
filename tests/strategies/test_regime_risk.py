"""Hysteresis and the risk limits (the same functions the live runner calls)."""

from __future__ import annotations

import numpy as np
import pytest

from strategies.engine import Engine
from strategies.regime import active_regimes, hysteresis
from strategies.risk import RunSettings, pair_capital
from tests.strategies.test_engine_semantics import (
    BAR_MS,
    RULES_TEN,
    dca_policy,
    grid_policy,
    orders,
    run_bars,
)

DAY = 86_400_000


def test_hysteresis_needs_dwell_and_probability():
    # active, cand, cand_n after one close: (raw, prob) with min_dwell 3, min_prob 0.6
    step = lambda s, raw, prob: hysteresis(*s, raw, prob, 3, 0.6)  # noqa: E731
    s = step((-1, -1, 0), 2, 0.9)
    assert s == (2, -1, 0)  # the first confident prediction arms at once
    s = step(s, 1, 0.7)
    s = step(s, 1, 0.7)
    assert s == (2, 1, 2)
    assert step(s, 1, 0.5) == (2, -1, 0)  # a weak bar resets the candidate
    assert step(s, 2, 0.9) == (2, -1, 0)  # so does the active regime again
    assert step(s, 0, 0.9) == (2, 0, 1)  # another candidate starts over
    assert step(s, 1, 0.7) == (1, -1, 0)  # third consecutive confident bar: switch
    assert step((2, -1, 0), -1, 1.0) == (2, -1, 0)  # no prediction keeps the active regime


def test_active_regimes_series():
    raw = np.array([0, 0, 1, 1, 0, 1, 1, 1, -1, 2], dtype=np.int64)
    got = active_regimes(raw, np.empty(0), 2, 0.0)
    assert got.tolist() == [0, 0, 0, 1, 1, 1, 1, 1, 1, 1]
    probs = np.array([1, 1, 1, 0.2, 1, 1, 1, 1, 1, 1.0])
    assert active_regimes(raw, probs, 2, 0.5).tolist() == [0, 0, 0, 0, 0, 0, 1, 1, 1, 1]


def test_pair_capital_never_exceeds_the_total():
    assert pair_capital(1000, 50, 2) == 500
    assert pair_capital(1000, 50, 4) == 250
    assert pair_capital(1000, 100, 1) == 1000


def test_exposure_limit_blocks_entries_beyond_the_room():
    run = RunSettings(capital_quote=1000, max_exposure_pct=12.0, max_drawdown_pct=0, daily_loss_limit_pct=0)
    eng = Engine(grid_policy(), RULES_TEN, run)
    run_bars(eng, [(101, 101, 101, 101)])
    assert [p for _, p, _ in orders(eng, "grid_buy")] == [100.0, 95.0]  # 120 quote of room: two 50s
    assert eng.state.si[27] == 1  # one blocked (I_N_BLOCKED)


def test_drawdown_kill_switch_cancels_entries_keeps_exits_and_optionally_sells():
    for sell in (False, True):
        run = RunSettings(capital_quote=1000, max_exposure_pct=100, max_drawdown_pct=1.0, daily_loss_limit_pct=0,
                          sell_inventory_on_kill=sell)
        eng = Engine(dca_policy(base_order_quote=400, safety_order_quote=50), RULES_TEN, run)
        run_bars(eng, [(100, 100, 100, 100), (100, 100, 100, 100)])
        assert [k for k, _, _ in orders(eng)] == ["dca_take_profit", "dca_safety", "dca_safety", "dca_safety"]
        run_bars(eng, [(100, 100, 96.9, 97.0)], start_ts=2 * BAR_MS)  # SO1 fills at 98; equity -1.3%
        assert eng.state.si[15] == 1  # killed
        if sell:
            assert [k for k, _, _ in orders(eng)] == ["kill_sell"]
            fills = run_bars(eng, [(97.7, 98, 97, 97.5)], start_ts=3 * BAR_MS)
            assert [f.kind for f in fills[0]] == ["kill_sell"] and eng.inventory < RULES_TEN.lot_size
        else:
            assert [k for k, _, _ in orders(eng)] == ["dca_take_profit"]  # entries gone, exit kept
        run_bars(eng, [(97.5, 97.5, 97.5, 97.5)] * 3, start_ts=4 * BAR_MS)
        assert not orders(eng, "dca_base") and not orders(eng, "dca_safety")  # for good


def test_daily_loss_limit_pauses_until_the_next_utc_day():
    run = RunSettings(capital_quote=1000, max_exposure_pct=100, max_drawdown_pct=0, daily_loss_limit_pct=1.0)
    eng = Engine(dca_policy(base_order_quote=400, safety_order_quote=100, max_safety_orders=1), RULES_TEN, run)
    t0 = 10 * DAY
    run_bars(eng, [(100, 100, 100, 100), (100, 100, 100, 100)], start_ts=t0)
    run_bars(eng, [(100, 100, 96.9, 97.0)], start_ts=t0 + 2 * BAR_MS)
    assert eng.state.si[16] == 1 and [k for k, _, _ in orders(eng)] == ["dca_take_profit"]
    run_bars(eng, [(97.6, 97.6, 97.6, 97.6)], start_ts=t0 + 3 * BAR_MS)
    assert eng.state.si[16] == 1
    eng.step(t0 + DAY, 97.6, 97.6, 97.6, 97.6)  # first bar of the next UTC day
    assert eng.state.si[16] == 0


@pytest.mark.parametrize("capital", [1000.0])
def test_risk_settings_vector_from_config(capital):
    from core.config import Config

    cfg = Config.model_validate({"risk": {"capital_quote": capital, "max_allocation_per_pair_pct": 50}})
    rs = RunSettings.from_config(cfg, n_pairs=2)
    assert rs.capital_quote == 500 and rs.as_array()[1] == pytest.approx(0.8)
