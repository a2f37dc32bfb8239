"""The ccxt client factory and the ccxt -> core.errors mapping, with errors produced by real ccxt
from real emulator answers (the server answers the candle request with the venue's error body)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from core import errors
from exchange.ccxt_client import make_exchange, translate_errors, venue
from exchange.emulator import EmulatorServer, EmulatorState, Request, Response
from tests.exchange.candle_fixtures import sample_5m

SINCE = 1_672_531_200_000


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorServer]:
    with EmulatorServer(EmulatorState.from_frames({("BTC/USDT", "5m"): sample_5m().iloc[:300]})) as server:
        yield server


def test_redirect_rewrites_every_rest_url_and_keeps_binance_paths() -> None:
    b = make_exchange("binance", base_url="http://127.0.0.1:9")
    urls = [u for u in b.urls["api"].values() if isinstance(u, str)]
    assert urls and all(u.startswith("http://127.0.0.1:9/") for u in urls)
    assert (
        b.urls["api"]["public"] == "http://127.0.0.1:9/api/v3"
        and b.urls["api"]["sapi"] == "http://127.0.0.1:9/sapi/v1"
    )
    g = make_exchange("bitget", base_url="http://127.0.0.1:9")
    assert set(g.urls["api"].values()) == {"http://127.0.0.1:9"}
    assert g.options["uta"] is False and g.options["fetchMarkets"]["types"] == ["spot"]
    assert b.has["fetchCurrencies"] is False and b.enableRateLimit is True and b.timeout == 10_000


def test_bad_base_url_and_unknown_exchange_are_config_errors() -> None:
    with pytest.raises(errors.ConfigError, match="not an http"):
        make_exchange("binance", base_url="127.0.0.1:8765")
    with pytest.raises(errors.ConfigError) as e:
        venue("binanse")
    assert "did you mean binance" in e.value.fix and "bitget" in e.value.fix


# (venue, HTTP status, body, extra headers) -> our class; every answer is a real one from the notes.
CASES = [
    (
        "binance",
        429,
        {"code": -1003, "msg": "Too many requests."},
        {"Retry-After": "7"},
        errors.RetryableExchangeError,
    ),
    (
        "binance",
        418,
        {"code": -1003, "msg": "Way too many requests; IP banned."},
        {},
        errors.RetryableExchangeError,
    ),
    ("binance", 503, "<html>503 Service Temporarily Unavailable</html>", {}, errors.RetryableExchangeError),
    (
        "binance",
        400,
        {"code": -1001, "msg": "Internal error; unable to process your request."},
        {},
        errors.RetryableExchangeError,
    ),
    (
        "binance",
        400,
        {"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."},
        {},
        errors.RetryableExchangeError,
    ),
    (
        "binance",
        401,
        {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."},
        {},
        errors.AuthenticationError,
    ),
    (
        "binance",
        400,
        {"code": -1022, "msg": "Signature for this request is not valid."},
        {},
        errors.AuthenticationError,
    ),
    (
        "binance",
        400,
        {"code": -2010, "msg": "Account has insufficient balance for requested action."},
        {},
        errors.InsufficientFundsError,
    ),
    ("binance", 400, {"code": -1013, "msg": "Filter failure: NOTIONAL"}, {}, errors.InvalidOrderError),
    ("binance", 400, {"code": -1013, "msg": "Filter failure: LOT_SIZE"}, {}, errors.InvalidOrderError),
    ("binance", 400, {"code": -2011, "msg": "Unknown order sent."}, {}, errors.OrderNotFoundError),
    ("binance", 400, {"code": -1121, "msg": "Invalid symbol."}, {}, errors.FatalExchangeError),
    ("bitget", 429, {"code": "429", "msg": "Too Many Requests"}, {}, errors.RetryableExchangeError),
    ("bitget", 502, "<html>502 Bad Gateway</html>", {}, errors.RetryableExchangeError),
    ("bitget", 400, {"code": "40009", "msg": "sign signature error"}, {}, errors.AuthenticationError),
    ("bitget", 400, {"code": "43012", "msg": "Insufficient balance"}, {}, errors.InsufficientFundsError),
    ("bitget", 400, {"code": "43001", "msg": "The order does not exist"}, {}, errors.OrderNotFoundError),
    (
        "bitget",
        400,
        {"code": "45110", "msg": "less than the minimum order quantity"},
        {},
        errors.InvalidOrderError,
    ),
]


@pytest.mark.parametrize(("name", "status", "body", "headers", "ours"), CASES, ids=lambda c: str(c)[:30])
def test_ccxt_errors_map_to_ours(emu: EmulatorServer, name, status, body, headers, ours) -> None:
    ex = make_exchange(name, base_url=emu.url, rate_limit=False)
    ex.load_markets()

    def answer(req: Request, call_next):
        return (
            Response(status, body, dict(headers))
            if "andles" in req.path or "klines" in req.path
            else call_next(req)
        )

    emu.router.use(answer)
    try:
        with pytest.raises(errors.ExchangeError) as e, translate_errors(name, "fetching candles", ex):
            ex.fetch_ohlcv("BTC/USDT", "5m", SINCE, 10)
    finally:
        emu.router.remove(answer)
    assert type(e.value) is ours
    assert name in e.value.problem and "fetching candles" in e.value.problem and e.value.fix
    if headers.get("Retry-After"):
        assert e.value.retry_after_s == 7.0


def test_timeout_and_refused_connection_are_retryable(emu: EmulatorServer) -> None:
    ex = make_exchange("binance", base_url=emu.url, rate_limit=False, timeout_s=0.2)
    ex.load_markets()

    def slow(req: Request, call_next):
        time.sleep(0.5)
        return call_next(req)

    emu.router.use(slow)
    try:
        with (
            pytest.raises(errors.RetryableExchangeError, match="did not answer in time"),
            translate_errors("binance", "x", ex),
        ):
            ex.fetch_time()
    finally:
        emu.router.remove(slow)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = make_exchange("bitget", base_url=f"http://127.0.0.1:{port}", rate_limit=False, timeout_s=2)
    with (
        pytest.raises(errors.RetryableExchangeError, match="cannot reach bitget|not available"),
        translate_errors("bitget", "x", dead),
    ):
        dead.fetch_time()
