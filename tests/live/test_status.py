"""`aiotrade status` data: read-only, per pair, while a writer holds the database open."""

from __future__ import annotations

from live.state import Fill, StateStore
from live.status import read_status

PAIR = "ETH/USDT"


def test_status_reads_what_the_runner_wrote(tmp_path):
    db = tmp_path / "state.db"
    w = StateStore(db, namespace="bot")
    w.set_meta("policy_version", "3")
    w.init_position(PAIR, 500.0, 0)
    w.set_meta(f"start_equity:{PAIR}", "500.0")
    buy = w.add_intent(pair=PAIR, side="buy", role="entry", slot=0, price=2000.0, amount=0.1, bar_ts=0, now_ms=1)
    w.record_fill(Fill("t1", buy.client_id, PAIR, "buy", 2000.0, 0.1, 0.0001, "ETH", 2), "USDT", 2)
    w.add_intent(pair=PAIR, side="sell", role="exit", slot=1, price=2050.0, amount=0.0999, bar_ts=0, now_ms=3)
    w.record_regime(PAIR, 0, "trend_up", 0.7, "range", {"engine": "grid", "levels": 10}, "3")
    w.record_equity(PAIR, 300_000, 2100.0)
    w.event(5, "warning", "stale_data", "no new candle", PAIR)
    st = read_status(db)  # the writer is still open
    assert st.runner["policy_version"] == "3"
    (p,) = st.pairs
    assert p.regime == "range" and p.predicted == "trend_up" and p.params["levels"] == 10
    assert [o["side"] for o in p.open_orders] == ["sell"]
    assert abs(p.inventory_base - 0.0999) < 1e-12 and abs(p.avg_entry - 200.0 / 0.0999) < 1e-9
    assert abs(p.pnl_quote - (300.0 + 0.0999 * 2100.0 - 500.0)) < 1e-9
    assert st.events[0]["kind"] == "stale_data"
    w.close()
