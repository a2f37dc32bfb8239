"""Every error the emulator answers reaches the caller as the right `core.errors` class, with the
venue's code in the message and a fix that tells the user what to do. Real ccxt clients, real
signatures; the emulator's rules are changed behind the client's back where the adapter's own
checks would otherwise stop the order before it is sent."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from core.errors import (
    AuthenticationError,
    ExchangeError,
    InsufficientFundsError,
    InvalidOrderError,
    OrderNotFoundError,
    RetryableExchangeError,
)
from core.secrets import Credentials
from exchange.ccxt_flows import RetryPolicy
from exchange.port import OrderRequest, client_order_id
from tests.exchange.contract.harness import KEY, PASSPHRASE, SECRET, SYMBOL, Harness, connect

HOUR_MS = 3_600_000
ORDER_PATHS = {"binance": "/api/v3/order", "bitget": "/api/v2/spot/trade/place-order"}


@pytest.fixture()
def emu(request: pytest.FixtureRequest, candles: pd.DataFrame, tmp_path: Path) -> Iterator[Harness]:
    from tests.exchange.contract.conftest import build_harness

    harness = build_harness(request.param, candles, tmp_path)
    harness.venue.load_markets()
    yield harness
    harness.close()


def server_rules(h: Harness, **changes: float) -> None:
    """Change the emulator's published rules after the client loaded the old ones."""
    state = h.server.state
    m = state.markets["BTCUSDT"]
    state.markets["BTCUSDT"] = replace(m, rules=replace(m.rules, **changes))


def buy(amount: float, price: float, intent: str = "err") -> OrderRequest:
    return OrderRequest(SYMBOL, "buy", "limit", amount, client_order_id(intent), price)


def expect(call: Callable[[], Any], cls: type[ExchangeError], *parts: str) -> ExchangeError:
    with pytest.raises(cls) as e:
        call()
    text = str(e.value)
    for part in parts:
        assert part in text, f"{part!r} not in {text!r}"
    assert e.value.fix, "every error tells the user what to do"
    return e.value


ORDER_CASES: list[tuple[str, str, dict[str, float], OrderRequest, type[ExchangeError], tuple[str, ...]]] = [
    (
        "binance",
        "PRICE_FILTER",
        {"tick_size": 1.0},
        buy(0.001, 20_000.55),
        InvalidOrderError,
        ("-1013", "PRICE_FILTER", "tick"),
    ),
    (
        "binance",
        "LOT_SIZE",
        {"lot_size": 0.001, "min_qty": 0.001},
        buy(0.00123, 20_000.0),
        InvalidOrderError,
        ("-1013", "LOT_SIZE"),
    ),
    (
        "binance",
        "NOTIONAL",
        {"min_notional": 100.0},
        buy(0.001, 20_000.0),
        InvalidOrderError,
        ("-1013", "NOTIONAL", "minimum notional"),
    ),
    (
        "binance",
        "-2010",
        {},
        buy(1.0, 20_000.0),
        InsufficientFundsError,
        ("Account has insufficient balance", "deposit"),
    ),
    (
        "bitget",
        "40808 price",
        {"tick_size": 0.1},
        buy(0.001, 20_000.55),
        InvalidOrderError,
        ("40808", "price checkBDScale"),
    ),
    (
        "bitget",
        "40808 size",
        {"lot_size": 0.001, "min_qty": 0.001},
        buy(0.00123, 20_000.0),
        InvalidOrderError,
        ("40808", "size checkBDScale"),
    ),
    (
        "bitget",
        "45110",
        {"min_notional": 100.0},
        buy(0.001, 20_000.0),
        InvalidOrderError,
        ("45110", "minimum amount"),
    ),
    ("bitget", "43012", {}, buy(1.0, 20_000.0), InsufficientFundsError, ("43012", "Insufficient balance")),
]


@pytest.mark.parametrize(
    "emu,case",
    [
        (f"{venue}-{mode}", c)
        for c in ORDER_CASES
        for venue in [c[0]]
        for mode in (["sync", "async"] if venue == "binance" else ["sync"])
    ],
    indirect=["emu"],
    ids=lambda x: x if isinstance(x, str) else x[1],
)
def test_order_rejections_map_to_the_right_class(emu: Harness, case: tuple) -> None:
    venue, _, rules, req, cls, parts = case
    server_rules(emu, **rules)
    expect(lambda: emu.venue.create_order(req), cls, *parts)
    assert emu.venue.fetch_open_orders(SYMBOL) == []
    assert any(r.status == 400 and r.path == ORDER_PATHS[venue] for r in emu.server.state.requests)


@pytest.mark.parametrize("emu", ["binance-sync", "binance-async", "bitget-sync"], indirect=True)
def test_unknown_order_on_cancel_and_lookup(emu: Harness) -> None:
    expect(
        lambda: emu.venue.cancel_order(SYMBOL, order_id="424242"),
        OrderNotFoundError,
        "does not know the order",
    )
    expect(lambda: emu.venue.fetch_order(SYMBOL, order_id="424242"), OrderNotFoundError, "424242")
    codes = {r.path: r.status for r in emu.server.state.requests if r.method in ("DELETE", "POST")}
    assert 400 in codes.values()  # the venue itself refused the cancel (-2011 / 43001)


AUTH_CASES = [
    ("binance-sync", Credentials("binance", KEY, "wrong-secret-123"), ("-1022", "Signature")),
    ("binance-async", Credentials("binance", KEY, "wrong-secret-123"), ("-1022", "Signature")),
    ("binance-sync", Credentials("binance", "unknown-key-123", SECRET), ("-2015", "Invalid API-key")),
    (
        "bitget-sync",
        Credentials("bitget", KEY, "wrong-secret-123", PASSPHRASE),
        ("40009", "sign signature error"),
    ),
    (
        "bitget-sync",
        Credentials("bitget", "unknown-key-123", SECRET, PASSPHRASE),
        ("40006", "Invalid ACCESS_KEY"),
    ),
    (
        "bitget-sync",
        Credentials("bitget", KEY, SECRET, "wrong-pass-123"),
        ("40012", "apikey/password is incorrect"),
    ),
]


@pytest.mark.parametrize(
    "emu,creds,parts", AUTH_CASES, indirect=["emu"], ids=[f"{c[0]}-{c[2][0]}" for c in AUTH_CASES]
)
def test_bad_credentials_are_rejected_by_the_emulator_and_reported_clearly(
    emu: Harness, creds: Credentials, parts: tuple[str, ...]
) -> None:
    venue = connect(emu.kind, emu.server.url, credentials=creds)
    try:
        err = expect(venue.fetch_balance, AuthenticationError, "API key rejected by", *parts)
        assert "IP whitelist" in (err.fix or "") and (
            "passphrase" in (err.fix or "")
        ) == creds.exchange.startswith("bitget")
        assert not isinstance(err, RetryableExchangeError)
    finally:
        venue.close()
    refused = [r for r in emu.server.state.requests if r.status in (400, 401)]
    assert refused, "the emulator itself refused the request"


CLOCK_PATH = {"binance": "/api/v3/account", "bitget": "/api/v2/spot/account/assets"}


@pytest.mark.parametrize("emu", ["binance-sync", "binance-async", "bitget-sync"], indirect=True)
def test_clock_skew_is_resynced_once_then_retried(emu: Harness) -> None:
    synced = emu.venue.client.options["timeDifference"]  # wall clock vs the emulator's 2023
    emu.venue.client.options["timeDifference"] = synced + HOUR_MS  # the client now runs an hour late
    assert emu.venue.fetch_balance()["USDT"].free == 10_000.0
    path = CLOCK_PATH[emu.kind.split("-")[0]]
    statuses = [r.status for r in emu.server.state.requests if r.path == path]
    assert statuses == [400, 200]  # rejected (-1021 / 40008), resynced, accepted
    assert abs(emu.venue.client.options["timeDifference"] - synced) < 60_000


@pytest.mark.parametrize("kind", ["binance-sync", "binance-async", "bitget-sync"])
def test_clock_skew_that_persists_is_reported_clearly(
    kind: str, candles: pd.DataFrame, tmp_path: Path
) -> None:
    from tests.exchange.contract.conftest import build_harness

    h = build_harness(kind, candles, tmp_path)
    no_resync = connect(kind, h.server.url, retry=RetryPolicy(attempts=2, base_delay_s=0.01, clock_resyncs=0))
    try:
        no_resync.load_markets()
        no_resync.client.options["timeDifference"] -= HOUR_MS  # an hour ahead
        err = expect(no_resync.fetch_balance, RetryableExchangeError, "request time", "clock skew")
        assert "clock" in (err.fix or "") and "NTP" in (err.fix or "")
        code = "-1021" if kind.startswith("binance") else "40008"
        assert code in str(err)
    finally:
        no_resync.close()
        h.close()
