"""The emulator's trading pieces on their own: signature checks against what ccxt signs, the rate
limiter, fault matching, the accounts config, the snapshot, and the endpoints the port does not use
(Binance allOrders, Bitget fills by order) read by real ccxt."""

from __future__ import annotations

import ccxt
import pytest

from core.errors import ConfigError
from exchange.ccxt_client import redirect
from exchange.emulator.accounts import accounts_from_dict
from exchange.emulator.faults import Fault
from exchange.emulator.ratelimit import RateLimiter
from exchange.emulator.router import Request, Response, Route
from exchange.emulator.signing import (
    binance_signature_ok,
    bitget_signature_ok,
    split_binance_signature,
)
from tests.exchange.candle_fixtures import sample_5m
from tests.exchange.contract.harness import KEY, PASSPHRASE, SECRET, make_emulator


def test_binance_signature_matches_what_ccxt_signs() -> None:
    ex = ccxt.binance({"apiKey": KEY, "secret": SECRET, "options": {"timeDifference": 0}})
    for method in ("GET", "POST"):
        signed = ex.sign(
            "order", ["private"], method, {"symbol": "BTCUSDT", "side": "BUY", "quantity": "0.001"}
        )
        query = signed["url"].split("?", 1)[1] if "?" in signed["url"] else ""
        payload, sig = split_binance_signature(query, signed["body"] or "")
        assert sig and binance_signature_ok(SECRET, payload, sig)
        assert not binance_signature_ok("other-secret", payload, sig)
    assert split_binance_signature("a=1&b=2", "") == ("a=1&b=2", None)
    assert split_binance_signature("signature=ab&a=1", "") == ("a=1", "ab")


def test_bitget_signature_matches_what_ccxt_signs() -> None:
    ex = ccxt.bitget(
        {"apiKey": KEY, "secret": SECRET, "password": PASSPHRASE, "options": {"timeDifference": 0}}
    )
    get = ex.sign(
        "v2/spot/trade/orderInfo", ["private", "spot"], "GET", {"orderId": "12", "clientOid": "a_b"}
    )
    post = ex.sign(
        "v2/spot/trade/place-order", ["private", "spot"], "POST", {"symbol": "BTCUSDT", "size": "1"}
    )
    for signed, method in ((get, "GET"), (post, "POST")):
        h = signed["headers"]
        path, _, query = signed["url"].split("://", 1)[1].split("/", 1)[1].partition("?")
        args = (h["ACCESS-TIMESTAMP"], method, "/" + path, query, signed["body"] or "")
        assert bitget_signature_ok(SECRET, h["ACCESS-SIGN"], *args)
        assert not bitget_signature_ok("other-secret", h["ACCESS-SIGN"], *args)


def _req(
    path: str = "/api/v3/account", weight: int = 20, venue: str = "binance", method: str = "GET"
) -> Request:
    req = Request(method, path, {}, client="10.0.0.1")
    req.route = Route(method, path, lambda r: Response(), venue, weight)
    return req


def test_rate_limiter_windows_429_then_418() -> None:
    now = [0.0]
    rl = RateLimiter(weight_per_window=50, window_s=60.0, ban_after=1, ban_s=120.0, time_fn=lambda: now[0])
    ok = lambda r: Response(200, {})  # noqa: E731
    assert [rl(_req(), ok).status for _ in range(3)] == [200, 200, 429]
    first_429 = rl(_req(), ok)
    assert first_429.status == 418 and first_429.headers["Retry-After"] == "120"
    assert "banned until" in first_429.body["msg"] and first_429.body["code"] == -1003
    now[0] = 130.0  # ban over, a new window
    resp = rl(_req(), ok)
    assert resp.status == 200 and resp.headers["X-MBX-USED-WEIGHT-1M"] == "20"
    limited = RateLimiter(weight_per_window=1, window_s=10.0, time_fn=lambda: 3.0)
    bitget = [limited(_req("/api/v2/spot/account/assets", 1, "bitget"), ok) for _ in range(2)]
    assert (
        bitget[1].status == 429
        and bitget[1].body["code"] == "429"
        and bitget[1].headers["Retry-After"] == "7"
    )


def test_fault_matching() -> None:
    f = Fault("error", "POST", "/api/v3/*", times=2, skip=1)
    assert f.matches(_req("/api/v3/order", method="POST")) and not f.matches(_req("/api/v3/order"))
    assert not Fault("drop", path="/api/v3/order").matches(_req("/api/v3/orders"))
    with pytest.raises(ValueError, match="unknown fault kind"):
        Fault("explode")


def test_accounts_config_errors_are_clear() -> None:
    specs = accounts_from_dict({"accounts": {"a": {"key": "k", "secret": "s", "balances": {"USDT": 5}}}})
    assert specs[0].balances == {"USDT": 5} and "k" not in repr(specs[0])
    bad = [
        ({}, "no [accounts"),
        ({"accounts": {"a": {"key": "k"}}}, "key and secret are required"),
        ({"accounts": {"a": {"key": "k", "secret": "s", "colour": 1}}}, "unknown keys"),
        (
            {"accounts": {"a": {"key": "k", "secret": "s"}, "b": {"key": "k", "secret": "t"}}},
            "used by another",
        ),
        ({"accounts": {"a": {"key": "k", "secret": "s", "balances": {"USDT": -1}}}}, ">= 0"),
    ]
    for raw, message in bad:
        with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
            accounts_from_dict(raw)


def test_all_orders_fills_by_order_and_snapshot() -> None:
    server, trading, _ = make_emulator(sample_5m("BTC/USDT").iloc[:800].reset_index(drop=True))
    try:
        creds = {"apiKey": KEY, "secret": SECRET, "password": PASSPHRASE}
        binance = ccxt.binance(
            {"options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False}, **creds}
        )
        bitget = ccxt.bitget({"options": {"fetchMarkets": {"types": ["spot"]}, "uta": False}, **creds})
        redirect(binance, server.url, keep_path=True)
        redirect(bitget, server.url, keep_path=False)
        for ex in (binance, bitget):
            ex.load_markets()
            ex.load_time_difference()
        a = binance.create_order("BTC/USDT", "limit", "buy", 0.001, 10_000, {"clientOrderId": "a1"})
        binance.create_order("BTC/USDT", "market", "sell", 0.001)
        orders = binance.fetch_orders("BTC/USDT")  # GET /api/v3/allOrders
        assert [o["id"] for o in orders][0] == a["id"] and [o["status"] for o in orders] == ["open", "closed"]
        trade = bitget.fetch_my_trades("BTC/USDT", params={"orderId": orders[1]["id"]})
        assert len(trade) == 1 and trade[0]["order"] == orders[1]["id"]
        snap = server.state.snapshot()["trading"]["accounts"]["contract"]
        assert snap["orders"] == 2 and snap["trades"] == 1 and len(snap["open_orders"]) == 1
        assert snap["balances"]["USDT"]["locked"] == pytest.approx(10.0)
    finally:
        server.stop()


def test_an_unconfigured_bitget_client_probes_uta_and_stays_classic() -> None:
    server, trading, _ = make_emulator(sample_5m("BTC/USDT").iloc[:800].reset_index(drop=True))
    try:
        ex = ccxt.bitget(
            {
                "apiKey": KEY,
                "secret": SECRET,
                "password": PASSPHRASE,
                "options": {"fetchMarkets": {"types": ["spot"]}},
            }
        )
        redirect(ex, server.url, keep_path=False)
        ex.load_markets()
        ex.load_time_difference()
        assert ex.fetch_balance()["USDT"]["free"] == 10_000.0
        paths = [r.path for r in server.state.requests]
        assert "/api/v3/account/settings" in paths and "/api/v2/spot/account/assets" in paths
        assert ex.options["uta"] is False
    finally:
        server.stop()
