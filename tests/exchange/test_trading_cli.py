"""`aiotrade emulator --accounts FILE` serves the trading endpoints for the accounts of a TOML file:
a real ccxt venue signs in with them and trades; a bad accounts file is one clear message."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from core.secrets import Credentials
from exchange.ccxt_venue import CcxtVenue
from exchange.port import OPEN, OrderRequest, client_order_id

SAMPLE = Path(__file__).resolve().parents[2] / "pipeline" / "sample_data"
ACCOUNTS = """
[accounts.alice]
key = "alice-key-1"
secret = "alice-secret-1"
passphrase = "alice-pass-1"
balances = { USDT = 2500.0, BTC = 0.1 }
"""


def _start(accounts: Path) -> subprocess.Popen[str]:
    cmd = [
        sys.executable,
        "-m",
        "pipeline.cli.main",
        "emulator",
        "--data",
        str(SAMPLE),
        "--port",
        "0",
        "--speed",
        "1",
        "--accounts",
        str(accounts),
    ]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.parametrize("venue", ["binance", "bitget"])
def test_emulator_command_serves_trading_for_configured_accounts(tmp_path: Path, venue: str) -> None:
    path = tmp_path / "accounts.toml"
    path.write_text(ACCOUNTS, encoding="utf-8")
    proc = _start(path)
    try:
        assert proc.stdout is not None
        url = None
        for line in proc.stdout:
            if "emulator listening on" in line:
                url = line.split("listening on ")[1].split()[0]
                break
        assert url, "the emulator never printed its URL"
        v = CcxtVenue.connect(
            venue,
            credentials=Credentials(venue, "alice-key-1", "alice-secret-1", "alice-pass-1"),
            base_url=url,
            rate_limit=False,
        )
        assert {a: b.free for a, b in v.fetch_balance().items()} == {"USDT": 2500.0, "BTC": 0.1}
        o = v.create_order(OrderRequest("BTC/USDT", "buy", "limit", 0.001, client_order_id("cli"), 10_000.0))
        assert o.status == OPEN and v.fetch_balance()["USDT"].locked == pytest.approx(10.0)
        v.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_bad_accounts_file_is_one_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "accounts.toml"
    path.write_text('[accounts.bob]\nkey = "k"\n', encoding="utf-8")
    proc = _start(path)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "accounts.bob: key and secret are required" in out and "Traceback" not in out
