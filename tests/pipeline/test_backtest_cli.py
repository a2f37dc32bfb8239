"""`aiotrade backtest` end to end on the bundled sample store: table, files, bad input, policy, MLflow."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from core.config import StrategyConfig
from core.market_rules import default_rules
from strategies.policy import Policy
from strategies.risk import RunSettings
from strategies.simulator import simulate
from tests.conftest import REPO_ROOT
from tests.pipeline.cli_runner import run_cli

SAMPLE = REPO_ROOT / "pipeline" / "sample_data"
RANGE = ["--from", "2023-02-01", "--to", "2023-02-15"]


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    if not (SAMPLE / "binance" / "BTC_USDT" / "5m.parquet").is_file():
        pytest.skip("the bundled sample store is missing")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)

    def run(*args: str) -> tuple[int, str, str]:
        return run_cli(monkeypatch, capsys, "backtest", "--store", str(SAMPLE), *args)

    return run


def test_backtest_prints_baselines_and_writes_the_simulators_trades(cli, tmp_path):
    code, out, err = cli("-p", "BTC/USDT", *RANGE, "--out", "bt")
    assert code == 0, err
    for label in ("grid (config)", "dca (static)", "buy & hold", "max drawdown", "Sharpe", "Calmar"):
        assert label in out
    assert "warning:" not in out  # the default grid (0.5% geometric) clears the 0.2% of round-trip fees
    trades = pd.read_csv(tmp_path / "bt" / "BTC_USDT" / "trades.csv")
    equity = pd.read_parquet(tmp_path / "bt" / "BTC_USDT" / "equity.parquet")
    summary = json.loads((tmp_path / "bt" / "summary.json").read_text())
    assert [r["run"] for r in summary] == ["grid (config)", "dca (static)", "buy & hold"]
    # The files hold exactly what the simulator gives for the same candles and settings.
    candles = pd.read_parquet(SAMPLE / "binance" / "BTC_USDT" / "5m.parquet")
    candles = candles[(candles.ts >= 1675209600000) & (candles.ts < 1676419200000)].reset_index(drop=True)
    rules = default_rules("binance", "BTC/USDT", float(candles.close.iloc[0]))
    want = simulate(candles, Policy.static(StrategyConfig(), "grid"), rules, RunSettings(capital_quote=500.0))
    grid = trades[trades["run"] == "grid (config)"]
    assert len(grid) == len(want.fills) > 50
    np.testing.assert_allclose(grid["price"], want.fills["price"])
    np.testing.assert_array_equal(equity["equity_grid_config"], want.equity)
    assert summary[0]["fills"] == len(want.fills) and summary[0]["final_equity"] == want.metrics["final_equity"]


@pytest.mark.parametrize("section, text, needle", [
    ("strategy.grid", "grid_step_pct = -0.5", "strategy.grid.grid_step_pct = -0.5: must be > 0"),
    ("strategy.grid", "levels = 0", "strategy.grid.levels = 0: must be >= 2"),
    ("strategy.dca", "volume_scale = 0", "strategy.dca.volume_scale = 0: must be > 0"),
    ("strategy.grid", 'range_mode = "fixed"\nlower_price = 30000.0\nupper_price = 20000.0',
     "lower_price 30000.0 must be below upper_price 20000.0"),
    ("risk", "capital_quote = 100.0", "minimum capital_quote: 950.00"),
])
def test_bad_config_gives_one_clear_message(cli, tmp_path, section, text, needle):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(f"[{section}]\n{text}\n")
    code, out, err = cli("-c", str(cfg), "-p", "BTC/USDT", *RANGE)
    flat = " ".join(err.split())
    assert code == 2 and needle in flat and "Traceback" not in err, err


def test_a_grid_finer_than_the_fees_is_warned_about_and_still_runs(cli, tmp_path, caplog):
    """k = 3 x ATR with 12 levels on 5m BTC: steps of ~0.07% against 0.2% of fees, a 0% win rate."""
    cfg = tmp_path / "fine.toml"
    cfg.write_text("[strategy.grid]\nlevels = 12\nrange_atr_mult = 3.0\n")
    with caplog.at_level("WARNING", logger="pipeline.backtest"):
        code, out, err = cli("-c", str(cfg), "-p", "BTC/USDT", *RANGE, "--out", "bt")
    flat = " ".join(out.split())
    assert code == 0, err
    assert ("warning: BTC/USDT: strategy.grid.range_atr_mult (range +/-3 x ATR(14), 12 levels): grid profit per "
            "round trip after fees is -0.") in flat
    assert "< fees 0.20%): every grid round trip loses money" in flat
    assert "raise grid.range_atr_mult to at least " in flat and "or use fewer levels (at most" in flat
    assert [r.getMessage() for r in caplog.records if "every grid round trip loses money" in r.getMessage()]
    summary = json.loads((tmp_path / "bt" / "summary.json").read_text())
    grid = next(r for r in summary if r["run"] == "grid (config)")
    assert grid["cycles"] > 0 and grid["win_rate"] == 0.0  # what the warning is about, on the same run


@pytest.mark.parametrize("args, needle", [
    (["--engine", "martingale"], "--engine 'martingale' is not an engine"),
    (["--from", "yesterday"], "--from 'yesterday' is not a date"),
    (["--from", "2023-03-01", "--to", "2023-02-01"], "is not before --to"),
    (["--from", "2030-01-01"], "0 candles stored"),
    (["-p", "DOGE/USDT"], "no candles stored for binance DOGE/USDT 5m"),
    (["--policy", "p.toml"], "--policy needs a regime per bar"),
])
def test_bad_arguments_give_one_clear_message(cli, args, needle):
    code, out, err = cli(*args)
    assert code == 2 and needle in " ".join(err.split()) and "Traceback" not in err, err


def test_policy_with_regimes_file(cli, tmp_path):
    (tmp_path / "pol.toml").write_text('min_dwell_bars = 2\n[regimes.0]\nengine = "grid"\n'
                                       '[regimes.1]\nengine = "dca"\n[regimes.2]\nengine = "none"\n')
    ts = pd.read_parquet(SAMPLE / "binance" / "BTC_USDT" / "5m.parquet")["ts"]
    pd.DataFrame({"ts": ts, "regime": (np.arange(len(ts)) // 500) % 3}).to_csv(tmp_path / "reg.csv", index=False)
    code, out, err = cli("-p", "BTC/USDT", *RANGE, "--policy", "pol.toml", "--regimes", "reg.csv", "--out", "bt")
    assert code == 0, err
    assert "policy pol" in out and "grid (static)" in out and "buy & hold" in out
    equity = pd.read_parquet(tmp_path / "bt" / "BTC_USDT" / "equity.parquet")
    assert set(equity["active_regime"]) == {0, 1, 2}
    trades = pd.read_csv(tmp_path / "bt" / "BTC_USDT" / "trades.csv")
    assert {"grid_buy", "dca_base"} <= set(trades["kind"])


@pytest.mark.slow
def test_mlflow_logging_with_plots(cli, tmp_path, monkeypatch):
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    code, out, err = cli("-p", "ETH/USDT", *RANGE, "--out", "bt", "--mlflow")
    assert code == 0 and "logged to MLflow run" in out, err
    run_id = out.split("logged to MLflow run ")[1].split()[0]
    mlflow.set_tracking_uri(uri)
    run = mlflow.get_run(run_id)
    assert run.data.tags["aiotrade.kind"] == "backtest" and run.data.params["pairs"] == "ETH/USDT"
    assert "ETH_USDT.grid_config.sharpe" in run.data.metrics
    names = {a.path for a in mlflow.MlflowClient().list_artifacts(run_id, "ETH_USDT")}
    assert {"ETH_USDT/equity.png", "ETH_USDT/fills.png", "ETH_USDT/trades.csv"} <= names
