"""No API key, secret or passphrase in any log line, ccxt's DEBUG request logs included, nor in
any error message, over a session with orders, a lost answer, retries and rejected credentials."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pytest

from core.errors import AuthenticationError
from core.secrets import Credentials
from exchange.port import OrderRequest, client_order_id
from tests.exchange.contract.conftest import build_harness
from tests.exchange.contract.harness import KEY, PASSPHRASE, SECRET, SYMBOL, connect

WRONG_SECRET, WRONG_PASS = "wrongSECRETz8Kq", "wrongPASSy5Tn"
SECRETS = (KEY, SECRET, PASSPHRASE, WRONG_SECRET, WRONG_PASS)


@pytest.mark.parametrize("kind", ["binance-sync", "binance-async", "bitget-sync"])
def test_no_secret_in_any_log_line(
    kind: str, candles: pd.DataFrame, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger: ccxt, urllib3, the emulator, ours
    h = build_harness(kind, candles, tmp_path)
    name = kind.split("-")[0]
    errors: list[str] = []
    try:
        v = h.venue
        v.load_markets()
        v.fetch_balance()
        h.faults.lost_answer("POST", "/api/v*")  # the order is placed, its answer lost: retried
        order = v.create_order(OrderRequest(SYMBOL, "buy", "limit", 0.002, client_order_id("logs"), 10_000.0))
        v.fetch_open_orders(SYMBOL)
        v.cancel_order(SYMBOL, order_id=order.id)
        for creds in (
            Credentials(name, KEY, WRONG_SECRET, PASSPHRASE),
            Credentials(name, KEY, SECRET, WRONG_PASS),
        ):
            bad = connect(kind, h.server.url, credentials=creds)
            try:
                bad.fetch_balance()
            except AuthenticationError as e:
                errors.append(str(e) + repr(e) + repr(creds))
            finally:
                bad.close()
    finally:
        h.close()
    ccxt_lines = [r.getMessage() for r in caplog.records if r.name.startswith("ccxt")]
    # The capture really holds ccxt's request logs with their (masked) auth headers.
    header = "X-MBX-APIKEY" if name == "binance" else "ACCESS-KEY"
    assert any(header in line and "****" in line for line in ccxt_lines)
    assert h.faults.fired and errors
    text = caplog.text + "\n".join(r.getMessage() for r in caplog.records) + "\n".join(errors)
    for secret in SECRETS:
        assert secret not in text, f"a secret leaked into the logs or errors: {secret[:4]}..."
