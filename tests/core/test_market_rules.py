from __future__ import annotations

import math

import numba as nb
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.market_rules import (
    BELOW_MIN_NOTIONAL,
    BELOW_MIN_QTY,
    NON_POSITIVE,
    OK,
    R_LOT,
    R_MIN_NOTIONAL,
    R_TICK,
    MarketRules,
    amount_to_lot,
    check_rules,
    default_rules,
    price_to_tick,
    venue_fees,
)

BTC = MarketRules("BTC/USDT", tick_size=0.01, lot_size=0.00001, min_qty=0.00001, min_notional=5.0)


def test_rounding_never_makes_an_order_more_aggressive():
    assert BTC.round_price(30000.019, is_buy=True) == 30000.01
    assert BTC.round_price(30000.011, is_buy=False) == 30000.02
    assert BTC.round_price(30000.01, is_buy=True) == 30000.01  # already on the grid: unchanged
    assert BTC.round_amount(0.0012345) == 0.00123
    assert BTC.round_amount(0.3 / 0.1 * 0.00001) == 0.00003  # float noise does not lose a lot


def test_checks_name_the_rule():
    assert BTC.check(30000.0, 0.001) == OK
    assert BTC.check(30000.0, 0.000001) == BELOW_MIN_QTY
    assert BTC.check(100.0, 0.0001) == BELOW_MIN_NOTIONAL
    assert BTC.check(0.0, 1.0) == NON_POSITIVE
    assert BTC.reject_reason(100.0, 0.0001) == "value below minimum notional"


def test_min_order_and_min_entry_quote():
    assert BTC.min_order_quote(30000.0) == pytest.approx(0.00017 * 30000.0)
    # the entry minimum leaves room for the fee taken in base and a lot of truncation
    entry = BTC.min_entry_quote(30000.0)
    qty = BTC.round_amount(BTC.round_amount(entry / 30000.0) * (1 - BTC.maker_fee))
    assert BTC.check(30000.0, qty) == OK


def on_grid(x: float, step: float) -> bool:
    steps = x / step
    return abs(steps - round(steps)) <= 1e-9 * max(1.0, steps)


@nb.njit
def _engine_side(price, amount, rules, is_buy):
    return price_to_tick(price, rules[R_TICK], is_buy), amount_to_lot(amount, rules[R_LOT]), check_rules(
        price, amount, rules)


@settings(max_examples=200, deadline=None)
@given(price=st.floats(0.0001, 1e6), amount=st.floats(1e-6, 1e4), is_buy=st.booleans(),
       tick_exp=st.integers(-8, 1), lot_exp=st.integers(-8, 1))
def test_numba_twins_agree_with_the_python_methods_and_land_on_the_grid(price, amount, is_buy, tick_exp, lot_exp):
    rules = MarketRules("X/USDT", 10.0**tick_exp, 10.0**lot_exp, 10.0**lot_exp, 5.0)
    p, a, code = _engine_side(price, amount, rules.as_array(), is_buy)
    assert p == rules.round_price(price, is_buy) and a == rules.round_amount(amount)
    assert code == rules.check(price, amount)
    assert on_grid(p, rules.tick_size) and on_grid(a, rules.lot_size)
    assert (p <= price * (1 + 1e-9)) if is_buy else (p >= price * (1 - 1e-9))
    assert a <= amount * (1 + 1e-9)


def test_rules_vector_layout():
    arr = BTC.as_array()
    assert arr.dtype == np.float64 and arr[R_TICK] == 0.01 and arr[R_MIN_NOTIONAL] == 5.0


def test_default_rules_known_pairs_and_fallback():
    r = default_rules("binance", "BTC/USDT", 30000.0, maker_fee_pct=0.075)
    assert (r.tick_size, r.lot_size, r.min_notional, r.maker_fee, r.taker_fee) == (0.01, 0.00001, 5.0, 0.00075, 0.001)
    unknown = default_rules("bitget", "PEPE/USDT", 0.0000123)
    assert unknown.min_notional == 1.0
    assert math.isclose(unknown.tick_size, 1e-11) and math.isclose(unknown.lot_size, 1e4)
    assert venue_fees("binance") == (0.001, 0.001)
