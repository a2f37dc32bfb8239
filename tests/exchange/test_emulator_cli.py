"""`aiotrade emulator` as a process, loading a candle store, with market rules from a TOML file."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.errors import ConfigError, DataError
from core.store import CandleStore
from exchange.ccxt_client import make_exchange
from exchange.emulator.loading import state_from_store
from exchange.emulator.markets import load_market_overrides
from tests.exchange.candle_fixtures import sample_5m


@pytest.fixture()
def store_root(tmp_path: Path) -> Path:
    store = CandleStore(tmp_path / "store")
    store.write("binance", "BTC/USDT", "5m", sample_5m("BTC/USDT").iloc[:500])
    store.write("binance", "ETH/USDT", "5m", sample_5m("ETH/USDT").iloc[:500])
    return tmp_path / "store"


def test_state_from_store_serves_every_dataset_with_override_rules(store_root: Path, tmp_path: Path) -> None:
    rules = tmp_path / "markets.toml"
    rules.write_text(
        "[markets.ETHUSDT]\ntick_size = 0.1\nlot_size = 0.001\nmin_qty = 0.001\nmin_notional = 10\n"
    )
    state = state_from_store(store_root, market_overrides=load_market_overrides(rules))
    snap = state.snapshot()["markets"]
    assert set(snap) == {"BTCUSDT", "ETHUSDT"} and snap["BTCUSDT"]["tick_size"] == 0.01
    assert (snap["ETHUSDT"]["tick_size"], snap["ETHUSDT"]["min_notional"]) == (0.1, 10.0)
    assert state.now_ms() == int(sample_5m().ts.iloc[499]) + 300_000


def test_bad_emulator_inputs_are_clear_errors(tmp_path: Path, store_root: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        state_from_store(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no candle datasets"):
        state_from_store(tmp_path / "empty")
    with pytest.raises(ConfigError, match="no datasets of 'bitget'"):
        state_from_store(store_root, source_exchange="bitget")
    bad = tmp_path / "m.toml"
    bad.write_text("[markets.BTCUSDT]\ntick = 1\n")
    with pytest.raises(ConfigError, match="unknown keys"):
        state_from_store(store_root, market_overrides=load_market_overrides(bad))


def test_emulator_command_serves_both_venues_until_stopped(store_root: Path, tmp_path: Path) -> None:
    cmd = [
        sys.executable,
        "-m",
        "pipeline.cli.main",
        "emulator",
        "--data",
        str(store_root),
        "--port",
        "0",
        "--speed",
        "0",
    ]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url, deadline = None, time.monotonic() + 60
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            if line.startswith("emulator listening on "):
                url = line.split()[3]
        assert url, proc.stderr.read() if proc.poll() is not None else "no URL line"
        for name in ("binance", "bitget"):
            ex = make_exchange(name, base_url=url, rate_limit=False)
            assert {"BTC/USDT", "ETH/USDT"} <= set(ex.load_markets())
            assert ex.fetch_time() == int(sample_5m().ts.iloc[499]) + 300_000
    finally:
        proc.terminate()
        proc.wait(10)


def test_emulator_command_bad_data_folder_is_one_message(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.cli.main import main

    monkeypatch.setattr(sys, "argv", ["aiotrade", "emulator", "--data", str(tmp_path / "nope")])
    with pytest.raises(SystemExit) as e:
        main()
    err = " ".join(capsys.readouterr().err.split())
    assert e.value.code == 2 and "nope does not exist" in err and "fix:" in err and "Traceback" not in err
