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

import signal
from pathlib import Path

import pytest

from live import engine_codec
from live.policy_source import StaticPolicy
from live.replay import (
    load_replay_state,
    run_replay,
    start_emulator,
)
from live.state import ACTIVE, StateStore
from strategies.layout import F_DUST

from .conftest import BAR_MS, SAMPLE, START_MS, assert_state_matches_exchange, dca_config
from .harness import Driver

pytestmark = pytest.mark.slow

N_BARS = 30
# Each life of the runner dies at the first time it reaches its stage; the last runs to the end. With
# the DCA below this kills a market entry before sending, in flight (it fills at once on the exchange)
# and before its answer is recorded, then a take-profit's cancel of the safety orders.
LIVES = [("after_intent", 1), ("in_flight", 1), ("after_answer", 1), ("after_cancel", 1), (None, 0)]


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
