"""`aiotrade live` paper trading end to end, `aiotrade status` while it runs, graceful SIGTERM.

Paper trading needs no keys and sends nothing to the exchange: market data comes from the emulator
(as it would from Binance), fills are simulated by the paper venue with the shared fill model.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from live.state import ACTIVE, CANCELLED, StateStore

from .conftest import BAR_MS, START_MS
from .harness import REPO, Driver

pytestmark = pytest.mark.slow

N_BARS = 8


def _status(d: Driver) -> dict:
    p = subprocess.run([sys.executable, "-m", "pipeline.cli.main", "status", "-c", str(d.config_path), "--json"],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_paper_trading_status_and_graceful_stop(tmp_path):
    d = Driver(tmp_path, extra_live="cancel_orders_on_exit = true")
    clock = d.env.state.clock
    try:
        d.spawn(None, 0, paper=True)
        for k in range(N_BARS):
            assert d.wait_bar(START_MS + (k + 1) * BAR_MS), "the paper runner died; see runner.log"
            if k == N_BARS - 2:
                st = _status(d)  # read while the runner is up and holds the DB open
            if k + 1 < N_BARS:
                clock.advance(BAR_MS)
        assert st["runner"]["mode"] == "paper" and st["runner"]["runner_state"] == "running"
        (pair,) = st["pairs"]
        assert pair["pair"] == "BTC/USDT" and pair["regime"] == "static" and pair["params"]["engine"] == "dca"
        assert pair["open_orders"] and pair["policy_version"].startswith("static:dca:")
        assert pair["n_fills"] >= 1 and pair["inventory_base"] > 0
        assert not d.env.trading.account("replay").orders, "paper trading sent nothing to the exchange"
        d.proc.send_signal(signal.SIGTERM)
        assert d.proc.wait(timeout=60) == 0
        store = StateStore(d.db, read_only=True)
        assert store.get_meta("runner_state") == "stopped"
        assert store.intents("BTC/USDT", ACTIVE) == [], "open orders are cancelled on exit when configured"
        assert any(i.status == CANCELLED for i in store.intents("BTC/USDT"))
        assert (tmp_path / "state-paper-binance.db").is_file(), "the paper account persists for a restart"
        store.close()
    finally:
        d.stop()
