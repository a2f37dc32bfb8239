"""Crash safety: SIGKILL the runner at every stage of an order cycle, restart it, lose and duplicate nothing.

The emulator runs in this process with a frozen virtual clock; the runner is a real `aiotrade live
--live` subprocess (real ccxt, signed requests) that follows the emulator's clock. This test drives
time bar by bar: it advances the clock only after the runner has committed the current bar. Each life
of the runner is killed at one stage:
- after_intent: the intent is committed, the order not sent (AIOTRADE_CRASH_AT in the runner);
- in_flight: the order reached the exchange and was created, the runner dies before the answer
  (an emulator middleware SIGKILLs the runner after the create ran, before writing the answer);
- after_answer: the exchange answered, the answer is not recorded yet;
- after_cancel: a cancel was answered, not recorded yet.
After each restart, and at the end, the state DB must equal the exchange (open orders, every fill,
balances), no client id may have been placed twice, the inventory's exit orders must rest, and the
whole history must equal an uncrashed reference run on the same bars.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from exchange.emulator.router import DropConnection
from live import engine_codec
from live.policy_source import StaticPolicy
from live.replay import (
    REPLAY_KEY,
    REPLAY_PASSPHRASE,
    REPLAY_SECRET,
    load_replay_state,
    run_replay,
    start_emulator,
)
from live.state import ACTIVE, StateStore
from strategies.layout import F_DUST

from .conftest import BAR_MS, SAMPLE, START_MS, assert_state_matches_exchange, dca_config

pytestmark = pytest.mark.slow

N_BARS = 30
REPO = Path(__file__).resolve().parents[2]
# Each life of the runner dies at the first time it reaches its stage; the last runs to the end. With
# the DCA below this kills a market entry before sending, in flight (it fills at once on the exchange)
# and before its answer is recorded, then a take-profit's cancel of the safety orders.
LIVES = [("after_intent", 1), ("in_flight", 1), ("after_answer", 1), ("after_cancel", 1), (None, 0)]


def _write_config(tmp: Path, url: str) -> Path:
    d = dca_config().strategy.dca
    text = f"""
[exchange]
name = "binance"
base_url = "{url}"
timeout_s = 5.0
[market]
pairs = ["BTC/USDT"]
base_timeframe = "5m"
feature_timeframes = ["1h"]
[strategy]
engine = "dca"
[strategy.dca]
base_order_quote = {d.base_order_quote}
safety_order_quote = {d.safety_order_quote}
max_safety_orders = {d.max_safety_orders}
price_deviation_pct = {d.price_deviation_pct}
step_scale = {d.step_scale}
volume_scale = {d.volume_scale}
take_profit_pct = {d.take_profit_pct}
[risk]
capital_quote = 1000.0
max_allocation_per_pair_pct = 100.0
max_exposure_pct = 90.0
[live]
state_db = "{tmp / 'state.db'}"
candle_delay_s = 0.0
retry_initial_s = 0.05
retry_max_s = 0.2
"""
    path = tmp / "aiotrade.toml"
    path.write_text(text)
    return path


class Driver:
    """Runs runner lives against the in-process emulator and moves its clock in lockstep."""

    def __init__(self, tmp: Path) -> None:
        self.cfg = dca_config()
        self.env = start_emulator(load_replay_state(SAMPLE, self.cfg, START_MS), self.cfg)
        self.tmp = tmp
        self.config_path = _write_config(tmp, self.env.server.url)
        self.db = tmp / "state.db"
        self.proc: subprocess.Popen | None = None
        self.log = open(tmp / "runner.log", "ab")  # noqa: SIM115 - kept open across lives
        self._creates_left: int | None = None
        self.env.server.router.use(self._kill_in_flight)

    def _kill_in_flight(self, req, call_next):
        resp = call_next(req)
        if self._creates_left is not None and req.method == "POST" and req.path == "/api/v3/order":
            self._creates_left -= 1
            if self._creates_left == 0 and self.proc is not None:
                os.kill(self.proc.pid, signal.SIGKILL)  # the order exists; its answer is never read
                self._creates_left = None
                raise DropConnection()
        return resp

    def spawn(self, stage: str | None, nth: int) -> None:
        env = {**os.environ, "AIOTRADE_BINANCE_KEY": REPLAY_KEY, "AIOTRADE_BINANCE_SECRET": REPLAY_SECRET,
               "AIOTRADE_BINANCE_PASSPHRASE": REPLAY_PASSPHRASE, "MLFLOW_TRACKING_URI": "sqlite:///unused.db", "PYTHONFAULTHANDLER": "1"}
        env.pop("AIOTRADE_CRASH_AT", None)
        if stage == "in_flight":
            self._creates_left = nth
        elif stage is not None:
            env["AIOTRADE_CRASH_AT"] = f"{stage}:{nth}"
        cmd = [sys.executable, "-m", "pipeline.cli.main", "live", "-c", str(self.config_path), "--live",
               "--yes-i-understand", "--static", "--follow-exchange-clock", "--json-logs"]
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=self.log, stderr=self.log)

    def committed_close(self) -> int | None:
        if not self.db.exists():
            return None
        try:
            with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=1) as db:
                row = db.execute("SELECT value FROM meta WHERE key = 'last_close_ms'").fetchone()
        except sqlite3.OperationalError:
            return None
        return int(row[0]) if row else None

    def wait_bar(self, close_ms: int, timeout_s: float = 40.0) -> bool:
        """True when the runner committed the bar closing at close_ms; False when it died first."""
        t_end = time.monotonic() + timeout_s
        while time.monotonic() < t_end:
            if (self.committed_close() or 0) >= close_ms:
                return True
            if self.proc is not None and self.proc.poll() is not None:
                return False
            time.sleep(0.02)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGABRT)  # faulthandler writes every thread's stack to runner.log
            time.sleep(1)
        raise AssertionError(f"runner did not finish the bar closing at {close_ms} in {timeout_s}s; see runner.log")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)
        self.log.close()
        self.env.close()


def _exits_cover_inventory(store: StateStore) -> tuple[float, float]:
    """(inventory the engine can sell, amount of resting exit orders)."""
    _, blob, _ = store.load_engine("BTC/USDT")
    dust = float(engine_codec.decode(blob).sf[F_DUST])
    sells = sum(i.remaining for i in store.intents("BTC/USDT", ACTIVE) if i.side == "sell")
    return store.position("BTC/USDT").base - dust, sells


def _reference(tmp: Path):
    cfg = dca_config()
    env = start_emulator(load_replay_state(SAMPLE, cfg, START_MS), cfg)
    store = StateStore(tmp / "ref.db", namespace=cfg.live.bot_name)
    run_replay(cfg, env, store, StaticPolicy.from_config(cfg), START_MS, START_MS + N_BARS * BAR_MS)
    acc = env.trading.account("replay")
    trades = [(t.side, t.price, t.qty, t.ts_ms) for t in acc.trades]
    open_orders = sorted((o.side, o.price, o.orig_qty - o.executed_qty) for o in acc.open_orders())
    env.close()
    store.close()
    return trades, open_orders


def test_sigkill_at_every_stage_loses_and_duplicates_nothing(tmp_path):
    ref_trades, ref_open = _reference(tmp_path)
    d = Driver(tmp_path)
    clock = d.env.state.clock
    deaths: list[tuple[str, int]] = []
    lives = iter(LIVES)
    try:
        stage, nth = next(lives)
        d.spawn(stage, nth)
        for k in range(N_BARS):
            close = START_MS + (k + 1) * BAR_MS
            assert clock.now_ms() == close
            while not d.wait_bar(close):
                assert d.proc.returncode == -signal.SIGKILL, f"runner exited with {d.proc.returncode}, see runner.log"
                deaths.append((stage, k))
                # between lives: the exchange may be ahead of the DB (that is the point); restart
                stage, nth = next(lives)
                d.spawn(stage, nth)
            if k + 1 < N_BARS:
                clock.advance(BAR_MS)
        assert [s for s, _ in deaths] == [s for s, _ in LIVES[:-1]], f"not every stage was hit: {deaths}"
        print("deaths (stage, bar):", deaths)
        store = StateStore(d.db, read_only=True)
        assert_state_matches_exchange(store, d.env, ["BTC/USDT"], 1000.0)
        sellable, exits = _exits_cover_inventory(store)
        assert sellable > 0 and abs(exits - sellable) < 1e-9, "inventory without its exit orders"
        acc = d.env.trading.account("replay")
        assert [(t.side, t.price, t.qty, t.ts_ms) for t in acc.trades] == ref_trades
        assert sorted((o.side, o.price, o.orig_qty - o.executed_qty) for o in acc.open_orders()) == ref_open
        store.close()
    finally:
        d.stop()
