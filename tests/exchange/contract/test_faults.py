"""Faults injected by the emulator, seen through real ccxt clients and the adapter: lost answers,
dropped connections, 5xx, timeouts, latency, and rate limits with Retry-After / bans."""

from __future__ import annotations

from pathlib import Path

import ccxt
import pandas as pd
import pytest

from core.errors import RetryableExchangeError
from exchange.ccxt_client import make_exchange
from exchange.ccxt_flows import RetryPolicy
from exchange.emulator.ratelimit import RateLimiter
from exchange.port import CANCELED, OPEN, OrderRequest, client_order_id
from tests.exchange.contract.conftest import build_harness
from tests.exchange.contract.harness import FAST_RETRY, KEY, PASSPHRASE, SECRET, SYMBOL, Harness, connect

PLACE = {"binance": ("POST", "/api/v3/order"), "bitget": ("POST", "/api/v2/spot/trade/place-order")}
CANCEL = {"binance": ("DELETE", "/api/v3/order"), "bitget": ("POST", "/api/v2/spot/trade/cancel-order")}
BALANCE = {"binance": "/api/v3/account", "bitget": "/api/v2/spot/account/assets"}


def venue_name(h: Harness) -> str:
    return h.kind.split("-")[0]


def resting_buy(h: Harness, intent: str) -> OrderRequest:
    price = round(float(h.candles.close.iloc[399]) * 0.7, 2)
    return OrderRequest(SYMBOL, "buy", "limit", 0.002, client_order_id(intent), price)


def test_lost_answer_after_the_order_was_created_gives_exactly_one_order(emu_h: Harness) -> None:
    method, path = PLACE[venue_name(emu_h)]
    emu_h.venue.load_markets()
    emu_h.faults.lost_answer(method, path)
    req = resting_buy(emu_h, "lost-answer")
    order = emu_h.venue.create_order(req)
    assert emu_h.faults.fired == [("lost_answer", method, path)]
    assert (order.client_order_id, order.status, order.amount) == (req.client_order_id, OPEN, 0.002)
    # The server placed it once; the adapter's retry found it by client id instead of placing again.
    assert emu_h.requests(method, path) == 1
    same_id = [o for o in emu_h.account.orders.values() if o.client_order_id == req.client_order_id]
    assert [o.order_id for o in same_id] == [int(order.id)]
    assert [o.id for o in emu_h.venue.fetch_open_orders(SYMBOL)] == [order.id]


def test_lost_answer_on_cancel_returns_the_cancelled_order(emu_h: Harness) -> None:
    order = emu_h.venue.create_order(resting_buy(emu_h, "lost-cancel"))
    method, path = CANCEL[venue_name(emu_h)]
    emu_h.faults.lost_answer(method, path)
    done = emu_h.venue.cancel_order(SYMBOL, order_id=order.id)
    assert (done.id, done.status) == (order.id, CANCELED)
    assert emu_h.account.orders[int(order.id)].status == "CANCELED"


def test_dropped_connection_and_5xx_are_retried(emu_h: Harness) -> None:
    path = BALANCE[venue_name(emu_h)]
    emu_h.venue.load_markets()
    emu_h.faults.drop("GET", path)
    emu_h.faults.error(503, "GET", path, times=2)
    assert emu_h.venue.fetch_balance()["USDT"].free == 10_000.0
    assert [f[0] for f in emu_h.faults.fired] == ["drop", "error", "error"]
    assert [r.status for r in emu_h.server.state.requests if r.path == path] == [0, 503, 503, 200]


def test_persistent_5xx_gives_up_with_a_clear_retryable_error(emu_h: Harness) -> None:
    path = BALANCE[venue_name(emu_h)]
    emu_h.venue.load_markets()
    emu_h.faults.error(502, "GET", path, times=None)
    with pytest.raises(RetryableExchangeError, match="not available") as e:
        emu_h.venue.fetch_balance()
    assert "retried automatically" in (e.value.fix or "")
    assert len([r for r in emu_h.server.state.requests if r.path == path]) == FAST_RETRY.attempts


@pytest.mark.parametrize("kind", ["binance-sync", "binance-async", "bitget-sync"])
def test_timeout_is_retried(kind: str, candles: pd.DataFrame, tmp_path: Path) -> None:
    h = build_harness(kind, candles, tmp_path)
    venue = connect(kind, h.server.url, timeout_s=0.3)
    try:
        venue.load_markets()
        order = venue.create_order(resting_buy(h, "timeout"))
        h.faults.timeout(1.0, "GET", "/api/v*")  # holds the next GET past the client's timeout
        assert venue.fetch_order(SYMBOL, order_id=order.id).id == order.id
        assert h.faults.fired[0][0] == "timeout"
    finally:
        venue.close()
        h.close()


def test_latency_slows_but_does_not_break(emu_h: Harness) -> None:
    emu_h.faults.latency(0.02)
    order = emu_h.venue.create_order(resting_buy(emu_h, "latency"))
    assert emu_h.venue.cancel_order(SYMBOL, order_id=order.id).status == CANCELED
    assert len(emu_h.faults.fired) >= 4


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


@pytest.mark.parametrize("kind", ["binance-sync", "binance-async", "bitget-sync"])
def test_429_waits_for_the_servers_retry_after(kind: str, candles: pd.DataFrame, tmp_path: Path) -> None:
    h = build_harness(kind, candles, tmp_path)
    clock = FakeTime()
    limiter = RateLimiter(weight_per_window=45, window_s=60.0, time_fn=clock)
    sleep = clock.asleep if kind.endswith("async") else clock.sleep
    venue = connect(kind, h.server.url, sleep=sleep, retry=RetryPolicy(attempts=3, max_wait_s=120.0))
    try:
        venue.load_markets()
        h.server.router.use(limiter)
        for _ in range(60):  # Binance account weight 20, Bitget 1: the limit is hit within the loop
            venue.fetch_balance()
            if limiter.refused:
                break
        assert limiter.refused and limiter.refused[0][0] == 429
        # The adapter slept exactly the server's Retry-After (to the next 60 s window), then succeeded.
        assert clock.slept == [20.0]
        assert h.server.state.requests[-1].status == 200
    finally:
        venue.close()
        h.close()


@pytest.mark.parametrize("kind", ["binance-sync", "bitget-sync"])
def test_a_client_that_keeps_going_is_banned_and_the_ban_is_not_slept(
    kind: str, candles: pd.DataFrame, tmp_path: Path
) -> None:
    h = build_harness(kind, candles, tmp_path)
    clock = FakeTime()
    limiter = RateLimiter(weight_per_window=1, window_s=60.0, ban_after=2, ban_s=600.0, time_fn=clock)
    name = kind.split("-")[0]
    creds = {"apiKey": KEY, "secret": SECRET, "password": PASSPHRASE}
    raw = make_exchange(name, base_url=h.server.url, rate_limit=False, credentials=creds)
    venue = connect(kind, h.server.url, sleep=clock.sleep)
    try:
        venue.load_markets()
        h.server.router.use(limiter)
        statuses = []
        for _ in range(5):  # a careless client hammering past 429s
            try:
                raw.fetch_time()
                statuses.append(200)
            except ccxt.DDoSProtection as e:
                statuses.append(418 if " 418 " in str(e) or "banned" in str(e) else 429)
        assert statuses[0] == 200 and 429 in statuses
        if name == "binance":
            assert statuses[-1] == 418 and limiter.refused[-1][0] == 418
        with pytest.raises(RetryableExchangeError, match="throttled") as e:
            venue.fetch_balance()
        assert e.value.retry_after_s == 600.0
        assert clock.slept == []  # a 10-minute ban goes back to the caller, not into a sleep
    finally:
        venue.close()
        h.close()


NOT_FOUND = {
    "binance": ("/api/v3/order", {"code": -2013, "msg": "Order does not exist."}),
    "bitget": (
        "/api/v2/spot/trade/orderInfo",
        {"code": "00000", "msg": "success", "requestTime": 0, "data": []},
    ),
}


def test_an_order_that_lands_between_lookup_and_create_is_returned_not_duplicated(emu_h: Harness) -> None:
    """Another attempt placed the order after our lookup missed it: the venue refuses the duplicate
    client id and the adapter returns the existing order."""
    name = venue_name(emu_h)
    req = resting_buy(emu_h, "race")
    first = emu_h.venue.create_order(req)
    path, body = NOT_FOUND[name]
    emu_h.faults.error(200 if name == "bitget" else 400, "GET", path, body=body)  # the lookup misses once
    again = emu_h.venue.create_order(req)
    assert again.id == first.id and emu_h.faults.fired == [("error", "GET", path)]
    method, place_path = PLACE[name]
    assert [r.status for r in emu_h.server.state.requests if r.method == method and r.path == place_path] == [
        200,
        400,
    ]
    assert len(emu_h.account.orders) == 1
