"""The state DB: intents before sending, idempotent ids, fills exactly once, positions, schema version."""

from __future__ import annotations

import sqlite3

import pytest

from core.errors import ConfigError
from exchange.port import CLIENT_ORDER_ID_RE
from live.ids import CLIENT_ID_LEN, intent_client_id, is_ours
from live.state import CANCELLED, EXPIRED, FILLED, INTENT, OPEN, SENT, EngineRef, Fill, StateStore

PAIR = "BTC/USDT"


@pytest.fixture()
def store(tmp_path):
    s = StateStore(tmp_path / "state.db", namespace="bot1")
    s.init_position(PAIR, 1000.0, now_ms=0)
    yield s
    s.close()


def _intent(store, slot=0, side="buy", price=100.0, amount=1.0, bar_ts=300_000):
    return store.add_intent(pair=PAIR, side=side, role="entry" if side == "buy" else "exit", slot=slot,
                            price=price, amount=amount, bar_ts=bar_ts, now_ms=1)


def test_wal_mode_and_schema_version(store, tmp_path):
    assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.get_meta("schema_version") == "1"
    db = sqlite3.connect(tmp_path / "state.db")
    db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    with pytest.raises(ConfigError, match="schema version 99"):
        StateStore(tmp_path / "state.db")


def test_client_ids_are_deterministic_venue_safe_and_namespaced():
    a = intent_client_id("bot1", PAIR, 300_000, 3, "buy", 100.5, 0.25)
    assert a == intent_client_id("bot1", PAIR, 300_000, 3, "buy", 100.5, 0.25)
    assert len(a) == CLIENT_ID_LEN and CLIENT_ORDER_ID_RE.match(a) and a == a.lower()
    others = {
        intent_client_id("bot2", PAIR, 300_000, 3, "buy", 100.5, 0.25),
        intent_client_id("bot1", "ETH/USDT", 300_000, 3, "buy", 100.5, 0.25),
        intent_client_id("bot1", PAIR, 600_000, 3, "buy", 100.5, 0.25),
        intent_client_id("bot1", PAIR, 300_000, 4, "buy", 100.5, 0.25),
        intent_client_id("bot1", PAIR, 300_000, 3, "sell", 100.5, 0.25),
        intent_client_id("bot1", PAIR, 300_000, 3, "buy", 100.51, 0.25),
        intent_client_id("bot1", PAIR, 300_000, 3, "buy", 100.5, 0.26),
    }
    assert a not in others and len(others) == 7
    assert is_ours(a, "bot1") and not is_ours(a, "bot2") and not is_ours("x-TKT5PX2Fabc", "bot1")


def test_same_intent_twice_is_one_row(store):
    a = _intent(store)
    b = _intent(store)
    assert a.client_id == b.client_id and a.status == INTENT
    assert len(store.intents()) == 1


def test_expired_intent_is_revived_under_the_same_id_but_a_filled_one_is_not(store):
    a = _intent(store)
    store.set_status(a.client_id, EXPIRED, 2, reason="not on the venue")
    b = _intent(store)
    assert b.client_id == a.client_id and b.status == INTENT and b.reason is None
    store.set_status(a.client_id, FILLED, 3)
    assert _intent(store).status == FILLED


def test_engine_identity_round_trips(store):
    ref = EngineRef(kind=4, ref=2, epoch=7, aux=101.5, market=True)
    a = store.add_intent(pair=PAIR, side="buy", role="entry", slot=400_002, price=100.0, amount=1.0, bar_ts=0,
                         now_ms=1, engine=ref)
    assert store.intent(a.client_id).engine == ref
    store.set_status(a.client_id, OPEN, 2, venue_order_id="77")
    assert store.intent_by_venue_id(PAIR, "77").client_id == a.client_id


def test_intent_is_committed_before_return(store, tmp_path):
    a = _intent(store)
    other = sqlite3.connect(tmp_path / "state.db")  # another process's view
    assert other.execute("SELECT status FROM intents WHERE client_id = ?", (a.client_id,)).fetchone()[0] == INTENT


def test_lifecycle_and_final_states_stick(store):
    a = _intent(store)
    store.set_status(a.client_id, SENT, 2)
    store.set_status(a.client_id, OPEN, 3, venue_order_id="42")
    store.set_status(a.client_id, CANCELLED, 4)
    store.set_status(a.client_id, OPEN, 5)  # a late, stale answer
    got = store.intent(a.client_id)
    assert got.status == CANCELLED and got.venue_order_id == "42"
    assert store.active_intents(PAIR) == []


def _fill(cid, fid, side, price, amount, fee, fee_asset):
    return Fill(fid, cid, PAIR, side, price, amount, fee, fee_asset, 10)


def test_fills_once_partial_then_full_and_position(store):
    a = _intent(store, amount=1.0, price=100.0)
    assert store.record_fill(_fill(a.client_id, "t1", "buy", 100.0, 0.4, 0.0004, "BTC"), "USDT", 5)
    assert not store.record_fill(_fill(a.client_id, "t1", "buy", 100.0, 0.4, 0.0004, "BTC"), "USDT", 6)
    assert store.intent(a.client_id).status == OPEN and store.intent(a.client_id).filled == pytest.approx(0.4)
    store.record_fill(_fill(a.client_id, "t2", "buy", 100.0, 0.6, 0.0006, "BTC"), "USDT", 7)
    assert store.intent(a.client_id).status == FILLED
    pos = store.position(PAIR)
    assert pos.base == pytest.approx(0.999) and pos.cash_quote == pytest.approx(900.0)
    assert pos.avg_entry == pytest.approx(100.0 / 0.999)
    s = _intent(store, slot=1, side="sell", price=110.0, amount=0.999)
    store.record_fill(_fill(s.client_id, "t3", "sell", 110.0, 0.999, 0.10989, "USDT"), "USDT", 8)
    pos = store.position(PAIR)
    assert pos.base == 0 and pos.cost_quote == 0
    assert pos.cash_quote == pytest.approx(900.0 + 109.89 - 0.10989)
    assert pos.realized_pnl_quote == pytest.approx(pos.cash_quote - 1000.0)
    assert pos.n_fills == 3 and len(store.fills(PAIR)) == 3


def test_engine_state_and_applied_fills_commit_together(store):
    a = _intent(store)
    store.record_fill(_fill(a.client_id, "t1", "buy", 100.0, 1.0, 0.001, "BTC"), "USDT", 5)
    assert [f.fill_id for f in store.fills(PAIR, applied=False)] == ["t1"]
    store.save_engine(PAIR, 300_000, b"\x00\x01", {"regime": "range"}, ["t1"], 9)
    assert store.fills(PAIR, applied=False) == []
    assert store.load_engine(PAIR) == (300_000, b"\x00\x01", {"regime": "range"})


def test_read_only_view_for_status(store, tmp_path):
    _intent(store)
    ro = StateStore(tmp_path / "state.db", read_only=True)
    assert len(ro.active_intents()) == 1
    with pytest.raises(ConfigError, match="not found"):
        StateStore(tmp_path / "missing.db", read_only=True)


def test_engine_state_codec_round_trips_a_trading_state():
    from core.config import StrategyConfig
    from core.market_rules import MarketRules
    from live import engine_codec
    from strategies.engine import Engine
    from strategies.policy import Policy
    from strategies.risk import RunSettings

    rules = MarketRules("BTC/USDT", 0.01, 0.00001, 0.00001, 5.0)
    eng = Engine(Policy.static(StrategyConfig()), rules, RunSettings(1000.0))
    price = 20_000.0
    for i in range(30):  # a few bars of a falling market: grid buys fill, exits appear
        fills, _ = eng.step(i * 300_000, price, price * 1.001, price * 0.995, price * 0.997)
        price *= 0.997
    assert eng.inventory > 0
    blob = engine_codec.encode(eng.state)
    assert len(blob) < 20_000
    assert engine_codec.decode(blob).equals(eng.state)
