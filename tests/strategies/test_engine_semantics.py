"""The documented engine rules on small hand-made bar sequences, through the per-bar API."""

from __future__ import annotations

import pytest

from core.config import DcaConfig, GridConfig
from core.market_rules import MarketRules
from strategies.engine import Engine
from strategies.policy import Policy, RegimeParams
from strategies.risk import RunSettings
from strategies.state import EngineState

RULES = MarketRules("BTC/USDT", tick_size=0.01, lot_size=0.00001, min_qty=0.00001, min_notional=5.0)
BAR_MS = 300_000


def grid_policy(**kw) -> Policy:
    g = dict(spacing="arithmetic", range_mode="fixed", lower_price=90.0, upper_price=110.0, levels=5,
             order_size_quote=50.0, trailing_up=False)
    g.update(kw)
    return Policy.single(RegimeParams(engine="grid", grid=GridConfig(**g)))


def dca_policy(**kw) -> Policy:
    d = dict(base_order_quote=100.0, safety_order_quote=50.0, max_safety_orders=3, price_deviation_pct=2.0,
             step_scale=2.0, volume_scale=2.0, take_profit_pct=1.0)
    d.update(kw)
    return Policy.single(RegimeParams(engine="dca", dca=DcaConfig(**d)))


RUN = RunSettings(capital_quote=1000.0, max_exposure_pct=100.0, max_drawdown_pct=0.0, daily_loss_limit_pct=0.0)
RULES_TEN = MarketRules("X/USDT", tick_size=0.01, lot_size=0.001, min_qty=0.001, min_notional=5.0)


def run_bars(eng: Engine, bars, regimes=None, start_ts=0):
    out = []
    for i, (o, h, l, c) in enumerate(bars):  # noqa: E741
        fills, _ = eng.step(start_ts + i * BAR_MS, o, h, l, c, 0 if regimes is None else regimes[i])
        out.append(fills)
    return out


def orders(eng: Engine, kind: str | None = None):
    return [(o.kind, o.price, o.amount) for o in eng.desired_orders() if kind is None or o.kind == kind]


def test_grid_orders_rest_from_the_next_bar_and_refill_only_after_a_close():
    eng = Engine(grid_policy(), RULES_TEN, RUN)
    # levels 90, 95, 100, 105, 110; the arming bar trades through 95 but nothing rests yet
    fills = run_bars(eng, [(101, 102, 94, 101)])
    assert fills == [[]]
    assert orders(eng, "grid_buy") == [("grid_buy", 100.0, 0.5), ("grid_buy", 95.0, 0.526), ("grid_buy", 90.0, 0.555)]
    # next bar dips through 100 and rallies through 105: the buy fills, its sell is decided at the close
    fills = run_bars(eng, [(101, 106, 99, 104)], start_ts=BAR_MS)
    assert [(f.kind, f.price, f.qty) for f in fills[0]] == [("grid_buy", 100.0, 0.5)]
    # the fee is taken in base (0.4995 received) and the sell truncated to the lot (0.499)
    assert orders(eng, "grid_sell") == [("grid_sell", 105.0, 0.499)]
    # the holding cell rests no buy; level 105 carries its sell; the cells below keep their buys
    assert [p for _, p, _ in orders(eng, "grid_buy")] == [95.0, 90.0]
    fills = run_bars(eng, [(104, 106, 103, 105.5)], start_ts=2 * BAR_MS)
    assert [(f.kind, f.price) for f in fills[0]] == [("grid_sell", 105.0)]
    assert eng.state.si[24] == 1  # one finished round trip (I_N_CYCLES)


def test_grid_never_sells_more_than_it_bought_and_dust_is_swept():
    eng = Engine(grid_policy(), RULES_TEN, RUN)
    run_bars(eng, [(101, 101, 101, 101), (101, 101, 99.5, 100.5), (100.5, 105.5, 100.5, 104)])
    assert eng.inventory == pytest.approx(0.0005)  # 0.499 sold of 0.4995 received: the rest is dust
    assert eng.dust == pytest.approx(0.0005)
    run_bars(eng, [(104, 104, 99.0, 101.0)], start_ts=3 * BAR_MS)  # buys 0.5 at 100 again
    assert eng.state.grid[2, 0] == pytest.approx(0.5)  # 0.4995 received + 0.0005 dust: a whole 0.5
    assert eng.dust == pytest.approx(0.0, abs=1e-12)
    assert orders(eng, "grid_sell") == [("grid_sell", 105.0, 0.5)]


def test_trailing_up_moves_the_grid_when_the_bottom_holds_nothing():
    eng = Engine(grid_policy(trailing_up=True), RULES_TEN, RUN)
    run_bars(eng, [(101, 101, 101, 101)])
    assert min(p for _, p, _ in orders(eng, "grid_buy")) == 90.0
    run_bars(eng, [(101, 116, 101, 116)], start_ts=BAR_MS)  # closes above 110 + one step (115)
    buys = sorted(p for _, p, _ in orders(eng, "grid_buy"))
    assert buys == [95.0, 100.0, 105.0, 110.0]  # the range is 95..115 now; every cell buys below 116
    run_bars(eng, [(116, 126, 116, 126)], start_ts=2 * BAR_MS)  # two steps over the top: two shifts
    assert sorted(p for _, p, _ in orders(eng, "grid_buy")) == [105.0, 110.0, 115.0, 120.0]


def test_grid_stop_loss_sells_everything_at_the_next_open_and_halts():
    eng = Engine(grid_policy(stop_loss_price=85.0), RULES_TEN, RUN)
    run_bars(eng, [(101, 101, 101, 101), (101, 101, 89, 89.5)])  # buys at 100, 95, 90
    run_bars(eng, [(89.5, 89.5, 84, 84.5)], start_ts=2 * BAR_MS)  # close below the stop
    assert orders(eng) == [("grid_stop", 84.5, pytest.approx(eng.inventory - eng.dust, abs=1e-9))]
    fills = run_bars(eng, [(84.0, 86, 83, 85)], start_ts=3 * BAR_MS)
    assert [(f.kind, f.price, f.taker) for f in fills[0]] == [("grid_stop", 84.0, True)]
    run_bars(eng, [(85, 101, 85, 100)] * 3, start_ts=4 * BAR_MS)
    assert orders(eng) == []  # halted until a regime switch re-arms it


def test_dca_base_at_market_safety_orders_scaled_and_take_profit_on_average():
    eng = Engine(dca_policy(), RULES_TEN, RUN)
    run_bars(eng, [(100, 100, 100, 100)])
    assert orders(eng) == [("dca_base", 100.0, 1.0)]  # market: 100 quote at the close's price
    fills = run_bars(eng, [(101, 101, 100.5, 101)], start_ts=BAR_MS)
    assert [(f.kind, f.price, f.taker) for f in fills[0]] == [("dca_base", 101.0, True)]
    so = orders(eng, "dca_safety")
    # deviations 2%, 2+4 = 6%, 6+8 = 14% below 101; sizes 50, 100, 200 quote
    assert so == [("dca_safety", 98.98, 0.505), ("dca_safety", 94.94, 1.053), ("dca_safety", 86.86, 2.302)]
    tp = orders(eng, "dca_take_profit")
    assert tp == [("dca_take_profit", 102.01, 0.999)]
    run_bars(eng, [(101, 101, 94, 95)], start_ts=2 * BAR_MS)  # SO1 and SO2 fill
    avg = (101 * 1.0 + 98.98 * 0.505 + 94.94 * 1.053) / (1.0 + 0.505 + 1.053)
    assert eng.dca_average_entry() == pytest.approx(avg)
    assert orders(eng, "dca_take_profit") == [("dca_take_profit", RULES_TEN.round_price(avg * 1.01, False),
                                               RULES_TEN.round_amount(eng.inventory))]
    assert [o[1] for o in orders(eng, "dca_safety")] == [86.86]  # only the unfilled one remains


def test_dca_trailing_take_profit_and_cooldown():
    eng = Engine(dca_policy(trailing_take_profit_pct=1.0, cooldown_bars=3, max_safety_orders=0), RULES_TEN, RUN)
    run_bars(eng, [(100, 100, 100, 100), (100, 100, 100, 100)])
    assert orders(eng, "dca_take_profit") == []  # trailing: no resting take-profit
    run_bars(eng, [(100, 102, 100, 101.5), (101.5, 103, 101.5, 103)], start_ts=2 * BAR_MS)
    assert orders(eng) == []  # trailing from 103: exit only when a close falls 1% below the peak
    run_bars(eng, [(103, 103, 101.9, 101.9)], start_ts=4 * BAR_MS)
    assert orders(eng) == [("dca_exit", 101.9, 0.999)]
    fills = run_bars(eng, [(101.8, 102, 101, 101.5)] * 4, start_ts=5 * BAR_MS)
    assert [f.kind for f in fills[0]] == ["dca_exit"]
    assert [len(f) for f in fills[1:]] == [0, 0, 0]
    # exit filled in bar 5; cooldown 3: the base order is placed at the close of bar 8
    assert orders(eng) == [("dca_base", 101.5, 0.985)]


def test_dca_stop_loss_exits_at_market_and_cancels_safety_orders():
    eng = Engine(dca_policy(stop_loss_pct=5.0, max_safety_orders=1), RULES_TEN, RUN)
    run_bars(eng, [(100, 100, 100, 100), (100, 100, 100, 100), (100, 100, 93.5, 94.6)])
    assert [k for k, _, _ in orders(eng)] == ["dca_take_profit"]  # SO1 filled; 94.6 above the stop
    run_bars(eng, [(94.6, 94.6, 94.0, 94.2)], start_ts=3 * BAR_MS)  # average 99.32: stop at 94.36
    assert orders(eng) == [("dca_exit", 94.2, pytest.approx(eng.inventory - eng.dust, abs=1e-9))]


def test_regime_switch_cancels_entries_keeps_exits_and_arms_the_new_engine():
    pol = Policy(regimes={0: grid_policy().regimes[0], 1: dca_policy().regimes[0]}, min_dwell_bars=2,
                 min_regime_probability=0.0)
    eng = Engine(pol, RULES_TEN, RUN)
    run_bars(eng, [(101, 101, 101, 101), (101, 101, 99.5, 100.5)], regimes=[0, 0])
    assert orders(eng, "grid_sell") == [("grid_sell", 105.0, 0.499)]
    run_bars(eng, [(100.5, 100.5, 100.5, 100.5)], regimes=[1], start_ts=2 * BAR_MS)
    assert eng.active_regime == 0 and orders(eng, "grid_buy")  # one bar of regime 1: hysteresis holds
    run_bars(eng, [(100.5, 100.5, 100.5, 100.5)], regimes=[1], start_ts=3 * BAR_MS)
    assert eng.active_regime == 1
    assert orders(eng, "grid_buy") == []  # entries of the old regime cancelled
    assert orders(eng, "legacy_sell") == [("legacy_sell", 105.0, 0.499)]  # its exit kept, same price
    assert orders(eng, "dca_base") == [("dca_base", 100.5, 0.995)]  # new regime armed, rests from next bar
    fills = run_bars(eng, [(100.4, 105.5, 100.4, 105)], regimes=[1], start_ts=4 * BAR_MS)
    assert [f.kind for f in fills[0]] == ["dca_base", "legacy_sell"]


def test_none_regime_pauses_entries():
    pol = Policy(regimes={0: dca_policy().regimes[0], 1: RegimeParams(engine="none")}, min_dwell_bars=0)
    eng = Engine(pol, RULES_TEN, RUN)
    run_bars(eng, [(100, 100, 100, 100)] * 2, regimes=[0, 0])
    run_bars(eng, [(100, 100, 100, 100)] * 3, regimes=[1, 1, 1], start_ts=2 * BAR_MS)
    assert orders(eng, "dca_safety") == [] and orders(eng, "dca_base") == []
    assert [k for k, _, _ in orders(eng)] == ["legacy_sell"]  # the open cycle keeps its take-profit


def test_stale_fill_after_a_switch_is_booked_as_a_legacy_exit():
    pol = Policy(regimes={0: grid_policy().regimes[0], 1: RegimeParams(engine="none")}, min_dwell_bars=0)
    eng = Engine(pol, RULES_TEN, RUN)
    run_bars(eng, [(101, 101, 101, 101)], regimes=[0])
    buy = next(o for o in eng.desired_orders() if o.kind == "grid_buy")
    run_bars(eng, [(101, 101, 101, 101)], regimes=[1], start_ts=BAR_MS)  # switch: the buy is cancelled ...
    eng.apply_fill(buy, buy.price, buy.amount, is_taker=False)  # ... but the venue filled it meanwhile
    eng.on_close(2 * BAR_MS, 100.0, 1)
    assert orders(eng) == [("legacy_sell", 105.0, 0.499)]


def test_snapshot_restore_continues_identically():
    eng = Engine(dca_policy(), RULES_TEN, RUN)
    bars = [(100, 100, 100, 100), (100, 100, 97, 98), (98, 99, 93, 94), (94, 103, 94, 102), (102, 102, 96, 97)]
    run_bars(eng, bars[:3])
    saved = eng.state.snapshot()
    a = run_bars(eng, bars[3:], start_ts=3 * BAR_MS)
    eng2 = Engine(dca_policy(), RULES_TEN, RUN, state=EngineState.restore(saved))
    b = run_bars(eng2, bars[3:], start_ts=3 * BAR_MS)
    assert a == b and eng.state.equals(eng2.state)
