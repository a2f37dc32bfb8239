"""The numba engine agrees fill for fill with the slow pure-Python reference on real candles."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.config import StrategyConfig
from core.market_rules import default_rules
from strategies.policy import Policy
from strategies.simulator import simulate
from tests.strategies.params import policies, regime_series, run_settings
from tests.strategies.reference import Reference

WINDOW = 2500


def assert_agree(candles, policy, rules, run, regimes=None, probs=None):
    res = simulate(candles, policy, rules, run, regimes, probs)
    ref = Reference(policy, rules, run)
    cols = [candles[k].to_numpy() for k in ("ts", "open", "high", "low", "close")]
    ref_equity = ref.run(*cols, regimes, probs)
    got = list(res.fills[["bar", "side", "kind", "ref", "price", "qty", "taker"]].itertuples(index=False, name=None))
    want = [(f.bar, f.side, f.kind, f.ref, f.price, f.qty, f.taker) for f in ref.fills]
    assert len(got) == len(want), f"engine {len(got)} fills, reference {len(want)}"
    for i, (a, b) in enumerate(zip(got, want, strict=True)):
        assert a[:5] == b[:5] and a[6] == b[6] and abs(a[5] - b[5]) <= 1e-12 * max(1.0, b[5]), f"fill {i}: {a} != {b}"
    assert res.state.sf[0] == ref.cash
    assert abs(res.state.sf[1] - ref.inv) <= 1e-12
    np.testing.assert_allclose(res.equity, ref_equity, rtol=1e-12, atol=1e-9)
    return res


def _window(candles, start):
    return candles.iloc[start:start + WINDOW].reset_index(drop=True)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data(), start=st.integers(0, 100_000), seed=st.integers(0, 2**31))
def test_random_policies_agree_with_reference(btc_5m, data, start, seed):
    candles = _window(btc_5m, start % (len(btc_5m) - WINDOW))
    ref_price = float(candles["close"].iloc[0])
    policy = data.draw(policies(ref_price))
    run = data.draw(run_settings())
    rules = default_rules("binance", "BTC/USDT", ref_price)
    regimes, probs = regime_series(seed, len(candles), len(policy.regimes))
    assert_agree(candles, policy, rules, run, regimes, probs)


@pytest.mark.shared_data
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data(), start=st.integers(0, 100_000), seed=st.integers(0, 2**31))
def test_random_policies_agree_on_another_market(doge_1m, data, start, seed):
    """DOGE 1m in the 2021 crash: whole-coin lots, five-decimal ticks, violent bars."""
    candles = _window(doge_1m, start % (len(doge_1m) - WINDOW))
    ref_price = float(candles["close"].iloc[0])
    policy = data.draw(policies(ref_price))
    run = data.draw(run_settings())
    rules = default_rules("binance", "DOGE/USDT", ref_price)
    regimes, probs = regime_series(seed, len(candles), len(policy.regimes))
    assert_agree(candles, policy, rules, run, regimes, probs)


def test_static_defaults_agree_with_reference_and_trade(btc_5m):
    candles = btc_5m.iloc[:8000].reset_index(drop=True)
    rules = default_rules("binance", "BTC/USDT", float(candles["close"].iloc[0]))
    from strategies.risk import RunSettings

    for engine in ("grid", "dca"):
        res = assert_agree(candles, Policy.static(StrategyConfig(), engine), rules, RunSettings(capital_quote=500))
        assert res.metrics["fills"] > 20 and res.metrics["cycles"] > 5  # the comparison is not vacuous
