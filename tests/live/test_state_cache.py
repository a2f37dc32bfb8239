"""The state store's write-through cache: every cached read equals what the DB holds.

Random sequences of store operations (hypothesis) run on one store; after each step its reads (served
from its cache) must equal those of a store opened fresh on the same file (read from the DB), field by
field and type by type. Failed transactions (an exception inside `tx`, a failed COMMIT) and commits by
another connection must leave nothing stale behind.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule

from live.state import (
    ACTIVE,
    CANCELLED,
    CANCELLING,
    EXPIRED,
    FILLED,
    INTENT,
    OPEN,
    REJECTED,
    SENT,
    UNRESOLVED,
    EngineRef,
    Fill,
    StateStore,
)

PAIRS = ("BTC/USDT", "ETH/USDT")
STATUSES = (INTENT, SENT, OPEN, CANCELLING, FILLED, CANCELLED, REJECTED, EXPIRED)
META_KEYS = ("a", "b", "trades_pending:BTC/USDT", "paused:ETH/USDT")


def typed(x: Any) -> Any:
    """A value with the type of every field spelled out (100 and 100.0 differ here)."""
    if dataclasses.is_dataclass(x):
        return (type(x).__name__, tuple(typed(getattr(x, f.name)) for f in dataclasses.fields(x)))
    if isinstance(x, list | tuple):
        return [typed(v) for v in x]
    return (type(x).__name__, x)


def _own(vid: str | None, cid: str) -> str | None:
    """A venue order id names one order: two intents never share one (hypothesis found that the cache and
    SQL pick different rows for a shared id, a state no exchange produces), so each id is the intent's own."""
    return None if vid is None else f"{vid}:{cid}"


def assert_same_view(cached: StateStore, path: Any, cids: list[str], vids: list[str]) -> None:
    fresh = StateStore(path, namespace=cached.namespace)
    try:
        for pair in (*PAIRS, None):
            assert typed(cached.intents(pair, ACTIVE)) == typed(fresh.intents(pair, ACTIVE))
            every = fresh.intents(pair)  # the plain SQL path, no cache involved
            assert typed(cached.active_intents(pair)) == typed([i for i in every if i.status in ACTIVE])
            assert typed(cached.intents(pair, UNRESOLVED)) == typed([i for i in every if i.status in UNRESOLVED])
        for cid in cids:
            assert typed(cached.intent(cid)) == typed(fresh.intent(cid))
        for pair in PAIRS:
            for vid in vids:
                assert typed(cached.intent_by_venue_id(pair, vid)) == typed(fresh.intent_by_venue_id(pair, vid))
            assert typed(cached.fills(pair, applied=False)) == typed(fresh.fills(pair, applied=False))
            applied = _applied_ids(path)
            assert typed(cached.fills(pair, applied=False)) == typed([f for f in fresh.fills(pair)
                                                                      if f.fill_id not in applied])
            assert typed(cached.position(pair)) == typed(fresh.position(pair))
        for key in META_KEYS:
            assert cached.get_meta(key) == fresh.get_meta(key)
    finally:
        fresh.close()


def _applied_ids(path: Any) -> set[str]:
    db = sqlite3.connect(path)
    try:
        return {r[0] for r in db.execute("SELECT fill_id FROM fills WHERE applied = 1")}
    finally:
        db.close()


class StoreOps(RuleBasedStateMachine):
    """Store operations in any order, the cache checked against the DB after every step."""

    intents = Bundle("intents")

    @initialize()
    def open_store(self) -> None:
        import tempfile
        from pathlib import Path

        self.dir = tempfile.TemporaryDirectory()
        self.path = Path(self.dir.name) / "state.db"
        self.store = StateStore(self.path, namespace="bot", durable_intents=False)
        for pair in PAIRS:
            self.store.init_position(pair, 1000, now_ms=0)  # an int: stored as REAL
        self.cids: list[str] = []
        self.vids: list[str] = ["v0"]
        self.fill_n = 0
        self.now = 1

    def teardown(self) -> None:
        self.store.close()
        self.dir.cleanup()

    def _tick(self) -> int:
        self.now += 1
        return self.now

    @rule(target=intents, pair=st.sampled_from(PAIRS), side=st.sampled_from(("buy", "sell")),
          slot=st.integers(0, 3), price=st.sampled_from((100, 100.5, 101.25)), amount=st.sampled_from((1, 0.5)),
          bar=st.integers(0, 2), sent=st.booleans(), kind=st.integers(0, 9), market=st.booleans())
    def open_intent(self, pair, side, slot, price, amount, bar, sent, kind, market):
        it, _ = self.store.open_intent(pair=pair, side=side, role="entry" if side == "buy" else "exit", slot=slot,
                                       price=price, amount=amount, bar_ts=bar * 300_000, now_ms=self._tick(),
                                       engine=EngineRef(kind, slot, 1, 0, market), status=SENT if sent else INTENT)
        if it.client_id not in self.cids:
            self.cids.append(it.client_id)
        return it.client_id

    @rule(cid=intents, status=st.sampled_from(STATUSES), vid=st.sampled_from((None, "v1", "v2", "v3")),
          reason=st.sampled_from((None, "why")))
    def set_status(self, cid, status, vid, reason):
        vid = _own(vid, cid)
        self.store.set_status(cid, status, self._tick(), venue_order_id=vid, reason=reason)
        if vid is not None and vid not in self.vids:
            self.vids.append(vid)

    @rule(cid=intents, slot=st.integers(0, 5), aux=st.sampled_from((0, 99.5)))
    def set_slot(self, cid, slot, aux):
        self.store.set_slot(cid, slot, EngineRef(3, slot, 2, aux), self._tick())

    @rule(cid=intents, part=st.sampled_from((0.25, 0.5, 1.0)), ts=st.integers(0, 5), again=st.booleans())
    def record_fill(self, cid, part, ts, again):
        it = self.store.intent(cid)
        assert it is not None
        if not again:
            self.fill_n += 1
        fid = f"f{max(self.fill_n, 1)}"
        fill = Fill(fid, cid, it.pair, it.side, it.price, it.amount * part, 0, "USDT", ts * 1000)
        self.store.record_fill(fill, "USDT", self._tick())

    @rule(pair=st.sampled_from(PAIRS), take=st.integers(0, 3), meta=st.sampled_from((None, {"a": "1"}, {"b": ""})),
          answers=st.lists(st.tuples(intents, st.sampled_from(STATUSES), st.sampled_from((None, "v4"))), max_size=2))
    def commit_cycle(self, pair, take, meta, answers):
        answers = [(cid, status, _own(vid, cid)) for cid, status, vid in answers]
        ids = [f.fill_id for f in self.store.fills(pair, applied=False)][:take]
        self.store.commit_cycle(pair, self.now, b"\x01", "{}", ids, ("up", 0.5, "up", {"x": 1}, "v"), 100.0,
                                self.now + 1, self._tick(), meta, answers)
        self._saw_vids(answers)

    @rule(answers=st.lists(st.tuples(intents, st.sampled_from(STATUSES), st.sampled_from((None, "v5"))), max_size=3))
    def settle(self, answers):
        answers = [(cid, status, _own(vid, cid)) for cid, status, vid in answers]
        self.store.settle(answers, self._tick())
        self._saw_vids(answers)

    def _saw_vids(self, answers):
        for _, _, vid in answers:
            if vid is not None and vid not in self.vids:
                self.vids.append(vid)

    @rule(key=st.sampled_from(META_KEYS), value=st.sampled_from(("", "0", "1", "x")), many=st.booleans())
    def set_meta(self, key, value, many):
        if many:
            self.store.set_metas({key: value, "b": value + "b"})
        else:
            self.store.set_meta(key, value)

    @rule(cid=intents, status=st.sampled_from(STATUSES), key=st.sampled_from(META_KEYS))
    def failed_transaction(self, cid, status, key):
        """Writes that update the cache inside a transaction, then an exception: all rolled back."""
        with pytest.raises(RuntimeError), self.store.tx() as db:
            self.store._set_status(db, cid, status, self._tick(), "v9", "lost")
            db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, 'lost')", (key,))
            self.store._note_meta({key: "lost"})
            raise RuntimeError("boom")

    @invariant()
    def cache_equals_db(self):
        if hasattr(self, "store"):
            assert_same_view(self.store, self.path, self.cids, self.vids)


TestStoreOps = StoreOps.TestCase
TestStoreOps.settings = settings(max_examples=60, stateful_step_count=25, deadline=None,
                                 suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture()
def store(tmp_path):
    s = StateStore(tmp_path / "state.db", namespace="bot")
    s.init_position(PAIRS[0], 1000.0, now_ms=0)
    yield s
    s.close()


def _intent(store, slot=0, status=INTENT):
    return store.open_intent(pair=PAIRS[0], side="buy", role="entry", slot=slot, price=100.0, amount=1.0,
                             bar_ts=0, now_ms=1, status=status)


def test_open_intent_as_sent_and_its_existing_row(store):
    a, new = _intent(store, status=SENT)
    assert new and a.status == SENT and store.intent(a.client_id).status == SENT
    b, new = _intent(store, status=SENT)
    assert not new and b == a, "an active intent is never written (nor sent) twice"
    store.set_status(a.client_id, EXPIRED, 2)
    c, new = _intent(store, status=SENT)
    assert new and c.status == SENT and c.reason is None, "an expired intent is revived under its id"
    store.set_status(a.client_id, FILLED, 3)
    d, new = _intent(store, status=SENT)
    assert not new and d.status == FILLED
    with pytest.raises(ValueError):
        _intent(store, slot=1, status=OPEN)


def test_failed_commit_leaves_nothing_cached(store, tmp_path):
    a, _ = _intent(store)
    store.fills(PAIRS[0], applied=False)  # the unapplied fills are cached from here on

    class FailingCommit:
        """The store's connection, whose COMMIT fails (a full disk, an I/O error)."""

        def __init__(self, db):
            self.__dict__["db"] = db

        def execute(self, sql, *args):
            if sql == "COMMIT":
                raise sqlite3.OperationalError("disk I/O error")
            return self.db.execute(sql, *args)

        def __getattr__(self, name):
            return getattr(self.db, name)

    real = store._db
    store._db = FailingCommit(real)
    try:
        with pytest.raises(sqlite3.OperationalError):
            store.set_status(a.client_id, OPEN, 2, venue_order_id="7")
        with pytest.raises(sqlite3.OperationalError):
            store.record_fill(Fill("t1", a.client_id, PAIRS[0], "buy", 100.0, 1.0, 0.0, "BTC", 5), "USDT", 3)
        with pytest.raises(sqlite3.OperationalError):
            store.set_metas({"k": "v"})
    finally:
        store._db = real
    assert not real.in_transaction, "the failed transaction was rolled back"
    assert store.intent(a.client_id).status == INTENT and store.intent_by_venue_id(PAIRS[0], "7") is None
    assert store.fills(PAIRS[0], applied=False) == [] and store.position(PAIRS[0]).n_fills == 0
    assert store.get_meta("k") is None
    assert_same_view(store, tmp_path / "state.db", [a.client_id], ["7"])


def test_exception_inside_a_write_method_drops_its_cache_updates(store, tmp_path):
    a, _ = _intent(store)
    store.fills("ETH/USDT", applied=False)
    # No position for ETH/USDT: the fill row and the cached unapplied fill are written, then it raises.
    with pytest.raises(KeyError, match="no position"):
        store.record_fill(Fill("t1", a.client_id, "ETH/USDT", "buy", 100.0, 1.0, 0.0, "BTC", 5), "USDT", 3)
    assert store.fills("ETH/USDT", applied=False) == []
    assert_same_view(store, tmp_path / "state.db", [a.client_id], [])


def test_another_connections_commit_is_seen(store, tmp_path):
    a, _ = _intent(store)
    b, _ = _intent(store, slot=1)
    ro = StateStore(tmp_path / "state.db", read_only=True)
    assert [i.status for i in ro.active_intents(PAIRS[0])] == [INTENT, INTENT]
    other = StateStore(tmp_path / "state.db", namespace="bot")  # e.g. an operator's tool
    other.set_status(a.client_id, CANCELLED, 5)
    other.set_meta("note", "hello")
    other.close()
    # A read-only store checks on every read; the writer inside its next transaction, under the lock.
    assert [i.client_id for i in ro.active_intents(PAIRS[0])] == [b.client_id] and ro.get_meta("note") == "hello"
    store.set_status(b.client_id, OPEN, 6)
    assert [i.client_id for i in store.active_intents(PAIRS[0])] == [b.client_id]
    assert store.get_meta("note") == "hello"
    assert_same_view(store, tmp_path / "state.db", [a.client_id, b.client_id], [])
    ro.close()


def test_a_restart_reads_what_was_committed(store, tmp_path):
    """The DB is the source of truth at start-up: a new store sees exactly the committed rows."""
    a, _ = _intent(store, status=SENT)
    store.set_status(a.client_id, OPEN, 2, venue_order_id="9")
    store.record_fill(Fill("t1", a.client_id, PAIRS[0], "buy", 100.0, 0.5, 0.0005, "BTC", 5), "USDT", 3)
    store.set_metas({"trades_synced_ms:BTC/USDT": "5"})
    assert_same_view(store, tmp_path / "state.db", [a.client_id], ["9"])
    again = StateStore(tmp_path / "state.db", namespace="bot")
    got = again.intent_by_venue_id(PAIRS[0], "9")
    assert got is not None and got.status == OPEN and got.filled == 0.5
    assert [f.fill_id for f in again.fills(PAIRS[0], applied=False)] == ["t1"]
    again.close()


def test_the_wal_is_checkpointed_off_the_writers_thread(tmp_path):
    store = StateStore(tmp_path / "state.db", namespace="bot", durable_intents=False)
    ckpt = store._checkpointer
    assert ckpt is not None
    ckpt.every_commits = 5
    for i in range(4):
        store.set_metas({"n": str(i)})
    assert ckpt._thread is None, "no thread before the first checkpoint is due"
    for i in range(6):
        store.set_metas({"n": str(i)})
    deadline = time.monotonic() + 10
    while ckpt.done == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ckpt.done >= 1 and ckpt._thread is not None and ckpt._thread.name == "state-db-checkpoint"
    thread = ckpt._thread
    store.close()
    assert not thread.is_alive(), "close stops the thread"
    again = StateStore(tmp_path / "state.db", read_only=True)
    assert again.get_meta("n") == "5" and again._checkpointer is None
    again.close()
