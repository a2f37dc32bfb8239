"""Policy tables, policy files, and the capital / minimum-order checks with their messages."""

from __future__ import annotations

import pytest

from core.config import DcaConfig, GridConfig, StrategyConfig
from core.errors import ConfigError
from core.market_rules import default_rules
from strategies.layout import P_D_MAX_SO, P_ENGINE, P_G_LEVELS
from strategies.policy import Policy, RegimeParams, check_funds, load_policy_file
from strategies.risk import RunSettings

BTC = default_rules("binance", "BTC/USDT", 30_000.0)


def test_table_rows_follow_regime_ids():
    pol = Policy(regimes={1: RegimeParams(engine="dca", dca=DcaConfig(max_safety_orders=7)),
                          0: RegimeParams(engine="grid", grid=GridConfig(levels=9)), 2: RegimeParams(engine="none")})
    t = pol.table()
    assert t.shape[0] == 3 and t[0, P_ENGINE] == 1 and t[0, P_G_LEVELS] == 9
    assert t[1, P_ENGINE] == 2 and t[1, P_D_MAX_SO] == 7 and t[2, P_ENGINE] == 0
    with pytest.raises(ConfigError, match="numbered 0..1"):
        Policy(regimes={0: RegimeParams(), 2: RegimeParams()}).table()


def test_capital_below_the_minimum_names_the_parameter_and_the_minimum():
    pol = Policy.static(StrategyConfig.model_validate({"grid": {"levels": 21, "order_size_quote": 25}}))
    run = RunSettings(capital_quote=250.0, max_exposure_pct=80.0)
    with pytest.raises(ConfigError) as e:
        check_funds(pol, BTC, run, 30_000.0, capital_share=0.5)
    msg = e.value.message
    assert "risk.capital_quote is too small" in msg and "20 buy levels x order_size_quote 25" in msg
    assert "need 500.00" in msg and "minimum capital_quote: 1250.00" in msg
    check_funds(pol, BTC, RunSettings(capital_quote=625.0, max_exposure_pct=80.0), 30_000.0, capital_share=0.5)


def test_dca_depth_counts_every_safety_order():
    dca = DcaConfig(base_order_quote=20, safety_order_quote=10, max_safety_orders=8, volume_scale=2.0,
                    price_deviation_pct=1.0, step_scale=1.0)
    pol = Policy.single(RegimeParams(engine="dca", dca=dca))
    need = 20 + sum(10 * 2**m for m in range(8))
    with pytest.raises(ConfigError, match=f"need {need:.2f}"):
        check_funds(pol, BTC, RunSettings(capital_quote=need, max_exposure_pct=80.0), 30_000.0)
    check_funds(pol, BTC, RunSettings(capital_quote=need / 0.8 + 0.01, max_exposure_pct=80.0), 30_000.0)


def test_order_below_the_venue_minimum_names_the_parameter():
    pol = Policy.static(StrategyConfig.model_validate({"dca": {"base_order_quote": 4.0}}), "dca")
    with pytest.raises(ConfigError) as e:
        check_funds(pol, BTC, RunSettings(capital_quote=10_000), 30_000.0)
    assert e.value.problem.startswith("strategy.dca.base_order_quote: an order of 4 USDT is below the smallest")
    assert e.value.fix == "raise strategy.dca.base_order_quote to at least 5.41"


def test_policy_file_round_trip_and_errors(tmp_path):
    p = tmp_path / "policy.toml"
    p.write_text('min_dwell_bars = 4\n[regimes.0]\nengine = "grid"\n[regimes.0.grid]\nlevels = 12\n'
                 '[regimes.1]\nengine = "none"\n')
    pol = load_policy_file(p)
    assert pol.min_dwell_bars == 4 and pol.regimes[0].grid.levels == 12 and pol.regimes[1].engine == "none"
    p.write_text('[regimes.0]\nengine = "grid"\n[regimes.0.grid]\nlevels = 0\n')
    with pytest.raises(ConfigError, match=r"regimes\.0\.grid\.levels"):
        load_policy_file(p)
    with pytest.raises(ConfigError, match="not found"):
        load_policy_file(tmp_path / "nope.toml")
