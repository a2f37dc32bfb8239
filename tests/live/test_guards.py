"""Live-only guards: stale data, order rate, exchange-rule filtering (dust, min notional)."""

from __future__ import annotations

from core.market_rules import MarketRules
from live.guards import OrderRateLimiter, StaleDataWatchdog, apply_rules, without_entries
from live.reconcile import DesiredOrder

TF = 300_000
RULES = MarketRules("BTC/USDT", tick_size=0.01, lot_size=0.001, min_qty=0.001, min_notional=5.0)


def test_watchdog_pauses_after_two_missing_bars_and_says_why():
    w = StaleDataWatchdog(TF)
    last_open = 10 * TF
    assert w.check("BTC/USDT", last_open, last_open + TF) is None  # just closed
    assert w.check("BTC/USDT", last_open, last_open + 2 * TF + 1) is None  # one bar late: tolerated
    why = w.check("BTC/USDT", last_open, last_open + 3 * TF)
    assert why and "no new candle for 2 bars" in why and "entries paused" in why
    assert "no candle received yet" in w.check("BTC/USDT", None, 0)


def test_rate_limiter_is_a_sliding_minute():
    lim = OrderRateLimiter(3)
    for t in (0, 10_000, 20_000):
        assert lim.allow(t)
        lim.record(t)
    assert not lim.allow(59_999)
    assert lim.allow(60_000) and lim.remaining(60_000) == 1


def test_rules_round_and_drop_dust_and_small_orders():
    orders = [
        DesiredOrder("BTC/USDT", "buy", 100.019, 0.1234, 0),  # rounded: price down, amount truncated
        DesiredOrder("BTC/USDT", "sell", 100.011, 0.1234, 1, "exit"),  # sell price rounds up
        DesiredOrder("BTC/USDT", "sell", 100.0, 0.0409, 2, "exit"),  # 4.09 USDT < 5: dust
        DesiredOrder("BTC/USDT", "buy", 100.0, 0.0004, 3),  # below the lot: 0 after truncation
    ]
    ok, dropped = apply_rules(orders, RULES)
    assert [(o.price, o.amount) for o in ok] == [(100.01, 0.123), (100.02, 0.123)]
    assert [d.order.slot for d in dropped] == [2, 3]
    assert dropped[0].reason.startswith("dust") and "minimum notional" in dropped[0].reason
    assert dropped[1].reason.startswith("too small")


def test_paused_entries_keep_exits_only():
    orders = [DesiredOrder("BTC/USDT", "buy", 99.0, 1.0, 0), DesiredOrder("BTC/USDT", "sell", 101.0, 1.0, 1, "exit")]
    assert without_entries(orders) == [orders[1]]
