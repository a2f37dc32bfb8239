"""The executor against the emulator: every intent is committed before its request, and the venue's
answers are recorded after the plan (with the trader's cycle commit when it holds them), also when the
plan fails part-way."""

from __future__ import annotations

import pytest

from core.errors import RetryableExchangeError
from live.executor import Executor
from live.guards import OrderRateLimiter
from live.reconcile import DesiredOrder, Plan
from live.replay import load_replay_state, start_emulator
from live.state import OPEN, SENT, StateStore
from live.sync import OrderSync

from .conftest import BAR_MS, SAMPLE, START_MS, busy_config

PAIR = "BTC/USDT"


@pytest.fixture()
def rig(tmp_path):
    cfg = busy_config()
    env = start_emulator(load_replay_state(SAMPLE, cfg, START_MS), cfg)
    store = StateStore(tmp_path / "s.db", namespace=cfg.live.bot_name, durable_intents=False)
    store.init_position(PAIR, 1000.0, START_MS)
    market = env.venue.load_markets()[PAIR]
    sync = OrderSync(store, env.venue, PAIR, market.quote, cfg.live.bot_name, BAR_MS)
    ex = Executor(store, env.venue, sync, market, OrderRateLimiter(100), BAR_MS)
    price = env.venue.fetch_last_price(PAIR)
    plan = Plan(create=[DesiredOrder(PAIR, "buy", market.rules.round_price(price * f, True), 0.001, slot)
                        for slot, f in enumerate((0.98, 0.97))])
    yield env, store, ex, plan
    store.close()
    env.close()


def _on_disk(store: StateStore) -> dict[str, tuple[str, str | None]]:
    fresh = StateStore(store.path, read_only=True)
    try:
        return {i.client_id: (i.status, i.venue_order_id) for i in fresh.intents(PAIR)}
    finally:
        fresh.close()


def test_held_answers_are_committed_with_the_cycle(rig):
    env, store, ex, plan = rig
    rep = ex.execute(plan, START_MS, START_MS + BAR_MS, hold_answers=True)
    assert rep.created == 2 and [a[1] for a in rep.answers] == [OPEN, OPEN]
    on_disk = _on_disk(store)
    assert sorted(on_disk.values()) == [(SENT, None)] * 2, "both committed before their requests, answers held"
    store.commit_cycle(PAIR, START_MS, b"\x00", "{}", [], ("r", 0.5, "r", "{}", "v"), 1.0, START_MS + BAR_MS,
                       START_MS + BAR_MS, answers=rep.answers)
    on_disk = _on_disk(store)
    assert {s for s, _ in on_disk.values()} == {OPEN} and all(v for _, v in on_disk.values())
    assert {i.client_id: (i.status, i.venue_order_id) for i in store.intents(PAIR)} == on_disk


def test_answers_are_recorded_at_once_unless_held(rig):
    env, store, ex, plan = rig
    rep = ex.execute(plan, START_MS, START_MS + BAR_MS)
    assert rep.answers == [] and {s for s, _ in _on_disk(store).values()} == {OPEN}


def test_a_plan_failing_part_way_records_the_answers_it_got(rig):
    env, store, ex, plan = rig
    env.faults.error(503, "POST", "/api/v3/order", times=50, skip=1)  # the second create keeps failing
    with pytest.raises(RetryableExchangeError):
        ex.execute(plan, START_MS, START_MS + BAR_MS, hold_answers=True)
    first, second = (store.intents(PAIR)[k] for k in (0, 1))
    on_disk = _on_disk(store)
    assert on_disk[first.client_id][0] == OPEN and on_disk[first.client_id][1] is not None
    assert on_disk[second.client_id] == (SENT, None), "in doubt: the next sync looks it up by client id"
