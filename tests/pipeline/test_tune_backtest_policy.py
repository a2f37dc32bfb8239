"""`aiotrade backtest --policy models:/NAME@ALIAS`: the registered bundle's own model gives the regimes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.config import DcaConfig, GridConfig
from core.market_rules import default_rules
from core.store import CandleStore
from pipeline.policy_backtest import bundle_policy, bundle_regimes
from strategies.policy import RegimeParams
from strategies.risk import RunSettings
from strategies.simulator import simulate
from tests.pipeline.cli_runner import run_cli
from tests.pipeline.tiny_policy import config_file, register_bundle, tiny_config


@pytest.mark.slow
def test_backtest_a_registered_policy_by_alias(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = tiny_config(tmp_path, bars=5000)
    # Two engines, so the policy's result depends on which regime the model arms at each bar.
    table = {0: RegimeParams(engine="grid", grid=GridConfig(grid_step_pct=0.4, levels=10, order_size_quote=30.0)),
             1: RegimeParams(engine="none"),
             2: RegimeParams(engine="dca", dca=DcaConfig(max_safety_orders=3, take_profit_pct=0.6)),
             3: RegimeParams(engine="grid", grid=GridConfig(grid_step_pct=1.0, levels=8, order_size_quote=30.0))}
    version = register_bundle(cfg, table, min_dwell_bars=2, min_regime_probability=0.3)
    uri = f"models:/{cfg.mlflow.model_name}@champion"

    code, _, err = _cli(monkeypatch, capsys, "-c", str(config_file(cfg, tmp_path / "a.toml")), "--policy", uri,
                        "--out", "bt")
    assert code == 0, err[-3000:]
    label = f"policy {cfg.mlflow.model_name}/{version}"
    summary = {r["run"]: r for r in json.loads((tmp_path / "bt" / "summary.json").read_text())}
    assert label in summary and "buy & hold" in summary

    # The same numbers by hand: the bundle's predictions, its hysteresis, the simulator.
    candles = CandleStore(cfg.data.store_dir).load("binance", "BTC/USDT", "5m")
    raw, prob = bundle_regimes(uri)("BTC/USDT", candles)
    policy, _ = bundle_policy(uri)
    assert (raw[:100] == -1).all() and (raw[-100:] >= 0).all()  # no prediction inside the feature warm-up
    rules = default_rules("binance", "BTC/USDT", float(candles["close"].iloc[0]))
    want = simulate(candles, policy, rules, RunSettings.from_config(cfg, 1), raw, prob)
    assert summary[label]["fills"] == want.metrics["fills"] > 0
    assert summary[label]["total_return"] == pytest.approx(want.metrics["total_return"])
    equity = pd.read_parquet(tmp_path / "bt" / "BTC_USDT" / "equity.parquet")
    assert np.array_equal(equity["active_regime"].to_numpy(), want.active_regime)
    assert len(set(want.active_regime[want.active_regime >= 0])) >= 2, "the model armed more than one regime"


def test_backtest_of_a_missing_registered_policy_is_one_clear_message(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = tiny_config(tmp_path, bars=2000)
    code, _, err = _cli(monkeypatch, capsys, "-c", str(config_file(cfg, tmp_path / "a.toml")),
                        "--policy", "models:/nothing@champion")
    err = " ".join(err.split())
    assert code == 2 and "no policy bundle at models:/nothing@champion" in err
    assert "aiotrade train" in err and "Traceback" not in err


def _cli(monkeypatch: pytest.MonkeyPatch, capsys, *args: str) -> tuple[int, str, str]:
    """`aiotrade backtest ARGS` in this process (the CLI's own entry point and error handling)."""
    return run_cli(monkeypatch, capsys, "backtest", *args)
