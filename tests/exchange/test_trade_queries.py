"""The emulator answers "my trades" queries with the venues' documented rules, and the adapter pages
through them so that `fetch_trades(since)` is complete however long the range.

Binance GET /api/v3/myTrades: at most 24 h between startTime and endTime (-1127), limit default 500
max 1000, fromId not with a time range (-1128). Bitget GET /api/v2/spot/trade/fills: at most 90 days
between startTime and endTime, 100 per page, newest first, older pages by idLessThan. Real ccxt
clients on the loopback emulator; the trades are put in the emulated account directly.
"""

from __future__ import annotations

import ccxt
import pytest

from exchange.ccxt_client import redirect
from exchange.emulator.accounts import SimTrade
from tests.exchange.candle_fixtures import sample_5m
from tests.exchange.contract.harness import KEY, PASSPHRASE, SECRET, SYMBOL, connect, make_emulator

HOUR_MS, N = 3_600_000, 300
STEP_MS = 10 * 60_000  # one trade every 10 minutes: 300 trades over 50 h


@pytest.fixture(scope="module")
def emu():
    server, trading, _ = make_emulator(sample_5m(SYMBOL).iloc[:800].reset_index(drop=True))
    now = server.state.now_ms()
    t0 = now - 51 * HOUR_MS
    acc = trading.account("contract")
    for i in range(N):
        acc.trades.append(SimTrade(i + 1, 10_000 + i, "BTCUSDT", "buy", 100.0, 0.01, 1.0, 0.0, "BTC",
                                   t0 + i * STEP_MS, True))
    yield server, t0
    server.stop()


def _raw(name: str, url: str):
    creds = {"apiKey": KEY, "secret": SECRET, "password": PASSPHRASE}
    opts = {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False, "uta": False}
    ex = getattr(ccxt, name)({"options": opts, "enableRateLimit": False, **creds})
    redirect(ex, url, keep_path=name == "binance")
    ex.load_markets()
    ex.load_time_difference()
    return ex


def test_binance_my_trades_rules(emu) -> None:
    server, t0 = emu
    ex = _raw("binance", server.url)
    with pytest.raises(ccxt.BadRequest, match="More than 24 hours between startTime and endTime"):
        ex.fetch_my_trades(SYMBOL, t0, None, {"until": t0 + 24 * HOUR_MS + 1})
    assert len(ex.fetch_my_trades(SYMBOL, t0, None, {"until": t0 + 24 * HOUR_MS})) == 145
    # startTime alone is held to the same 24 h: a single `since` query does not reach the present.
    since_only = ex.fetch_my_trades(SYMBOL, t0)
    assert [int(t["id"]) for t in since_only] == list(range(1, 146))
    assert [int(t["id"]) for t in ex.fetch_my_trades(SYMBOL, t0, 10)] == list(range(1, 11))
    # fromId: trades >= it, oldest first, no time bound; not combinable with a time range.
    assert [int(t["id"]) for t in ex.fetch_my_trades(SYMBOL, None, 1000, {"fromId": 200})] == list(range(200, 301))
    with pytest.raises(ccxt.BadRequest, match="Combination of optional parameters invalid"):
        ex.fetch_my_trades(SYMBOL, t0, None, {"fromId": 5})
    # Neither: the most recent `limit` (default 500, max 1000).
    assert [int(t["id"]) for t in ex.fetch_my_trades(SYMBOL, None, 5)] == list(range(296, 301))


def test_bitget_fills_rules(emu) -> None:
    server, t0 = emu
    ex = _raw("bitget", server.url)
    with pytest.raises(ccxt.BadRequest, match="90 days"):
        ex.fetch_my_trades(SYMBOL, t0, None, {"until": t0 + 90 * 24 * HOUR_MS + 1})
    newest = ex.fetch_my_trades(SYMBOL, t0)  # 100 per page, the newest of the range
    assert sorted(int(t["id"]) for t in newest) == list(range(201, 301))
    older = ex.fetch_my_trades(SYMBOL, t0, 500, {"idLessThan": 201})  # limit is capped at 100
    assert sorted(int(t["id"]) for t in older) == list(range(101, 201))


@pytest.mark.parametrize("kind", ["binance-sync", "binance-async", "bitget-sync"])
def test_the_adapter_returns_every_trade_since(emu, kind: str) -> None:
    server, t0 = emu
    venue = connect(kind, server.url)
    try:
        every = venue.fetch_trades(SYMBOL, since_ms=t0 - HOUR_MS)
        assert [int(t.id) for t in every] == list(range(1, N + 1))
        oldest = venue.fetch_trades(SYMBOL, since_ms=t0 + STEP_MS, limit=150)
        assert [int(t.id) for t in oldest] == list(range(2, 152))
        assert venue.fetch_trades(SYMBOL, since_ms=t0 + N * STEP_MS) == []
    finally:
        venue.close()
