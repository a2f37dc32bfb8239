"""Faults: a replay while the emulator adds latency, 5xx, dropped and timed-out connections, lost answers,
429/418 with Retry-After, and partial fills, ends with the state DB equal to the exchange's."""

from __future__ import annotations

import pytest

from exchange.emulator.faults import TIMEOUT, Fault
from exchange.emulator.matching import FillPolicy
from live.policy_source import StaticPolicy
from live.replay import load_replay_state, run_replay, start_emulator
from live.state import StateStore

from .conftest import BAR_MS, SAMPLE, START_MS, assert_state_matches_exchange, dca_config

pytestmark = pytest.mark.slow

N_BARS = 60


def test_replay_under_faults_ends_equal_to_the_exchange(tmp_path):
    cfg = dca_config()
    env = start_emulator(load_replay_state(SAMPLE, cfg, START_MS), cfg, timeout_s=1.0,
                         fill_policy=FillPolicy(max_fill_fraction=0.5))
    f = env.faults
    # specific faults first: the first matching fault applies, and the latency below matches everything
    f.lost_answer("POST", "/api/v3/order", times=3, skip=1)  # created, but the client never hears it
    f.error(500, "POST", "/api/v3/order", times=2, skip=4)  # refused before the handler ran
    f.lost_answer("DELETE", "/api/v3/order", times=1)  # cancelled, answer lost
    f.drop("DELETE", "/api/v3/order", times=1, skip=1)  # connection dropped before the cancel
    # a replay lists open orders only at full syncs (start-up, an order in doubt, a market order): a few a run
    f.error(503, "GET", "/api/v3/openOrders", times=3, skip=1)
    f.error(429, "GET", "/api/v3/myTrades", times=2, skip=3, headers={"Retry-After": "0"},
            body={"code": -1003, "msg": "Too many requests"})
    f.error(418, "GET", "/api/v3/openOrders", times=1, skip=2, headers={"Retry-After": "1"},
            body={"code": -1003, "msg": "Way too many requests; IP banned"})
    f.add(Fault(TIMEOUT, "GET", "/api/v3/klines", times=1, skip=10, delay_s=1.5))  # past the client's 1 s timeout
    f.error(502, "GET", "/api/v3/order", times=2, skip=2)  # lookups by client id fail too
    f.latency(0.003)
    store = StateStore(tmp_path / "s.db", namespace=cfg.live.bot_name)
    try:
        runner = run_replay(cfg, env, store, StaticPolicy.from_config(cfg), START_MS, START_MS + N_BARS * BAR_MS)
        fired = {(k, m, p) for k, m, p in f.fired}
        for kind, method, path in [("lost_answer", "POST", "/api/v3/order"), ("error", "POST", "/api/v3/order"),
                                   ("lost_answer", "DELETE", "/api/v3/order"), ("drop", "DELETE", "/api/v3/order"),
                                   ("error", "GET", "/api/v3/openOrders"), ("error", "GET", "/api/v3/myTrades"),
                                   ("timeout", "GET", "/api/v3/klines"), ("latency", "GET", "/api/v3/klines")]:
            assert (kind, method, path) in fired, f"fault {kind} {method} {path} never fired"
        assert f.fired.count(("error", "GET", "/api/v3/openOrders")) == 4, "the 503s and the 418 on open orders"
        assert runner.stats.bars == N_BARS
        acc = env.trading.account("replay")
        partial = [t for t in acc.trades if t.qty < acc.orders[t.order_id].orig_qty - 1e-12]
        assert partial, "partial fills happened"
        assert_state_matches_exchange(store, env, ["BTC/USDT"], 1000.0)
        # the engine booked the very fills the exchange made (fees included)
        assert abs(runner.traders[0].engine.inventory - store.position("BTC/USDT").base) < 1e-9
    finally:
        env.close()
        store.close()


def test_a_cycle_retried_by_the_runner_books_its_fills_once(tmp_path):
    """The exchange keeps failing one order longer than the adapter retries: the error reaches the
    runner, which runs the cycle again. The engine must not keep what the failed attempt booked."""
    cfg = dca_config()
    env = start_emulator(load_replay_state(SAMPLE, cfg, START_MS), cfg)
    # bar 0 sends the market base order; bar 1 books its fill, then its first create fails 7 times
    env.faults.error(503, "POST", "/api/v3/order", times=7, skip=1)
    store = StateStore(tmp_path / "s.db", namespace=cfg.live.bot_name)
    try:
        runner = run_replay(cfg, env, store, StaticPolicy.from_config(cfg), START_MS, START_MS + 20 * BAR_MS)
        assert runner.stats.retries >= 1, "the error should have reached the runner"
        assert_state_matches_exchange(store, env, ["BTC/USDT"], 1000.0)
        assert abs(runner.traders[0].engine.inventory - store.position("BTC/USDT").base) < 1e-9
        assert not [i for i in store.intents("BTC/USDT") if i.status == "rejected"], "no order refused for funds"
    finally:
        env.close()
        store.close()
