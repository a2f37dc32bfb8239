"""Golden backtests on real candles: trades and metrics must not move unless the rules change on purpose.

After an intended change of the engine's semantics, regenerate with
`AIOTRADE_UPDATE_GOLDEN=1 pytest tests/strategies/test_golden.py` and explain the change in the commit.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.config import StrategyConfig
from core.market_rules import default_rules
from strategies.policy import Policy, RegimeParams
from strategies.risk import RunSettings
from strategies.simulator import simulate
from tests.conftest import REPO_ROOT
from tests.strategies.conftest import read_freqtrade

GOLDEN = Path(__file__).with_name("golden_backtests.json")
GOLDEN_SAMPLE = Path(__file__).with_name("golden_backtests_sample.json")
SAMPLE = REPO_ROOT / "pipeline" / "sample_data" / "binance" / "BTC_USDT" / "5m.parquet"
KEYS = ("fills", "buys", "sells", "cycles", "final_equity", "total_return", "max_drawdown", "sharpe", "sortino",
        "fees_quote", "turnover_quote", "time_in_market", "longest_underwater_bars", "final_inventory")


def fills_digest(fills) -> str:
    rows = fills[["bar", "kind", "ref", "price", "qty"]].itertuples(index=False, name=None)
    text = "\n".join(f"{b},{k},{r},{p:.8f},{q:.10f}" for b, k, r, p, q in rows)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cases(ohlcv: Path):
    btc = read_freqtrade(ohlcv / "2023_1h_5m" / "BTC_USDT-5m.feather")
    eth = read_freqtrade(ohlcv / "2024-01_09_1h_5m" / "ETH_USDT-5m.feather")
    cfg = StrategyConfig()
    run = RunSettings(capital_quote=500.0)
    yield "btc_2023_5m_grid_default", btc, Policy.static(cfg, "grid"), run, None
    yield "btc_2023_5m_dca_default", btc, Policy.static(cfg, "dca"), run, None
    # A three-regime policy on a fixed regime series (one switch a day), with every risk limit armed.
    pol = Policy(regimes={
        0: RegimeParams(engine="grid", grid=cfg.grid.model_copy(update={"grid_step_pct": 0.4, "levels": 16})),
        1: RegimeParams(engine="dca", dca=cfg.dca.model_copy(update={"trailing_take_profit_pct": 0.4,
                                                                      "stop_loss_pct": 8.0})),
        2: RegimeParams(engine="none")}, min_dwell_bars=3, min_regime_probability=0.5)
    regimes = (np.arange(len(eth)) // 288) % 3
    run2 = RunSettings(capital_quote=1000.0, max_drawdown_pct=20.0, daily_loss_limit_pct=3.0)
    yield "eth_2024_5m_policy", eth, pol, run2, regimes


def sample_cases():
    if not SAMPLE.is_file():
        pytest.skip("the bundled sample store is missing")
    candles = pd.read_parquet(SAMPLE)
    for engine in ("grid", "dca"):
        yield f"btc_sample_5m_{engine}_default", candles, Policy.static(StrategyConfig(), engine), \
            RunSettings(capital_quote=500.0), None


def check_golden(got: dict, path: Path) -> None:
    if os.environ.get("AIOTRADE_UPDATE_GOLDEN"):
        path.write_text(json.dumps(got, indent=2, sort_keys=True) + "\n")
        pytest.skip(f"golden values rewritten to {path}")
    want = json.loads(path.read_text())
    assert got.keys() == want.keys()
    for name in want:
        for key, value in want[name].items():
            if isinstance(value, float):
                assert got[name][key] == pytest.approx(value, rel=1e-9, abs=1e-12), f"{name}.{key}"
            else:
                assert got[name][key] == value, f"{name}.{key}"


def run_cases(cases_) -> dict:
    got = {}
    for name, candles, policy, run, regimes in cases_:
        rules = default_rules("binance", name[:3].upper() + "/USDT", float(candles["close"].iloc[0]))
        res = simulate(candles, policy, rules, run, regimes)
        got[name] = {k: res.metrics[k] for k in KEYS} | {"fills_sha": fills_digest(res.fills)}
    return got


@pytest.mark.shared_data
def test_golden_backtests(shared_ohlcv):
    check_golden(run_cases(cases(shared_ohlcv)), GOLDEN)


def test_golden_backtests_on_the_bundled_sample():
    """Runs on a fresh clone too (no ../shared needed)."""
    check_golden(run_cases(sample_cases()), GOLDEN_SAMPLE)
