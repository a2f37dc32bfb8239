"""Bitget v2 spot market data of the emulator, read by real ccxt clients over loopback."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Iterator

import ccxt
import pandas as pd
import pytest

from exchange.ccxt_client import VENUES, make_exchange, redirect
from exchange.emulator import EmulatorServer, EmulatorState
from tests.exchange.candle_fixtures import sample_5m

FIVE = 300_000
ROWS = 700


@pytest.fixture(scope="module")
def df() -> pd.DataFrame:
    return sample_5m("BTC/USDT").iloc[:ROWS].reset_index(drop=True)


@pytest.fixture(scope="module")
def emu(df: pd.DataFrame) -> Iterator[EmulatorServer]:
    with EmulatorServer(EmulatorState.from_frames({("BTC/USDT", "5m"): df})) as server:
        yield server


@pytest.fixture()
def at_end(emu: EmulatorServer, df: pd.DataFrame) -> int:
    return emu.state.clock.set(int(df.ts.iloc[-1]) + FIVE)


@pytest.fixture()
def ex(emu: EmulatorServer):
    return make_exchange("bitget", base_url=emu.url, rate_limit=False)


def _get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url) as f:
            return f.status, json.loads(f.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _frame(rows: list[list]) -> pd.DataFrame:
    out = pd.DataFrame(rows, columns=["ts", "open", "high", "low", "close", "volume"])
    return out.astype({"ts": "int64", **{c: "float64" for c in ["open", "high", "low", "close", "volume"]}})


def test_spot_options_load_markets_from_symbols_only(emu: EmulatorServer, ex, at_end: int) -> None:
    emu.state.requests.clear()
    m = ex.load_markets()["BTC/USDT"]
    assert [r.path for r in emu.state.requests] == [
        "/api/v2/spot/public/symbols",
        "/api/v2/margin/currencies",
    ]
    assert m["spot"] and m["active"] and m["id"] == "BTCUSDT"
    assert (m["precision"]["price"], m["precision"]["amount"]) == (0.01, 0.00001)
    assert (m["limits"]["amount"]["min"], m["limits"]["cost"]["min"]) == (0.00001, 5.0)


def test_credentials_without_uta_option_stay_on_classic_endpoints(
    emu: EmulatorServer, df, at_end: int
) -> None:
    raw = ccxt.bitget({"enableRateLimit": False, "apiKey": "k", "secret": "s", "password": "p"})
    redirect(raw, emu.url, keep_path=VENUES["bitget"].keep_url_path)
    emu.state.requests.clear()
    assert "BTC/USDT" in raw.load_markets()  # default types: spot and the swap probes
    probe = [r for r in emu.state.requests if r.path == "/api/v3/account/settings"]
    assert len(probe) == 1 and probe[0].status == 400
    raw.fetch_ohlcv("BTC/USDT", "5m", int(df.ts.iloc[0]), 10)
    assert emu.state.requests[-1].path.startswith("/api/v2/spot/market/")


def test_time_is_the_virtual_clock(emu: EmulatorServer, ex, at_end: int) -> None:
    assert ex.fetch_time() == at_end
    later = emu.state.clock.advance(1234)
    assert ex.fetch_time() == later


def test_pages_of_200_reproduce_the_stored_candles(emu: EmulatorServer, ex, df, at_end: int) -> None:
    emu.state.requests.clear()
    rows, since = [], int(df.ts.iloc[0])
    while since <= int(df.ts.iloc[-1]):
        page = ex.fetch_ohlcv("BTC/USDT", "5m", since, 200)
        rows += page
        since = page[-1][0] + FIVE
    calls = [r for r in emu.state.requests if "candles" in r.path]
    # ccxt judges `since` old by its wall clock (these candles are from 2023): history endpoint.
    assert len(calls) == 4 and all(r.path.endswith("/history-candles") for r in calls)
    assert calls[0].query["granularity"] == "5min" and calls[0].query["limit"] == "200"
    pd.testing.assert_frame_equal(_frame(rows), df)


def test_history_candles_are_the_latest_before_end_time_and_capped_at_200(
    emu: EmulatorServer, df, at_end
) -> None:
    end = int(df.ts.iloc[500])
    url = f"{emu.url}/api/v2/spot/market/history-candles?symbol=BTCUSDT&granularity=5min&endTime={end}&limit=500"
    status, body = _get(url)
    assert status == 200 and body["code"] == "00000"
    ts = [int(r[0]) for r in body["data"]]
    assert ts == df.ts.iloc[300:500].tolist()  # 200 candles, oldest first, endTime exclusive
    assert len(body["data"][0]) == 8 and float(body["data"][0][5]) == df.volume.iloc[300]
    status, body = _get(url.replace("history-candles", "candles"))  # the recent endpoint allows 1000
    assert [int(r[0]) for r in body["data"]] == df.ts.iloc[:500].tolist()


def test_never_a_candle_from_the_future(emu: EmulatorServer, ex, df) -> None:
    now = emu.state.clock.set(int(df.ts.iloc[400]) + 120_000)
    rows = ex.fetch_ohlcv("BTC/USDT", "5m", int(df.ts.iloc[300]), 200)
    assert rows[-1][0] == df.ts.iloc[400] <= now and len(rows) == 101
    assert rows[-1][1:] == [df.open.iloc[400]] * 4 + [0.0]


def test_ticker_and_book(emu: EmulatorServer, ex, df) -> None:
    now = emu.state.clock.set(int(df.ts.iloc[600]) + FIVE)
    t = ex.fetch_ticker("BTC/USDT")
    assert t["timestamp"] == now and t["last"] == df.open.iloc[601] and t["bid"] < t["last"] < t["ask"]
    book = ex.fetch_order_book("BTC/USDT", 3)
    assert len(book["bids"]) == 3 and book["bids"][0][0] < t["last"] < book["asks"][0][0]


def test_bad_requests_get_bitget_error_bodies(emu: EmulatorServer, at_end: int) -> None:
    base = f"{emu.url}/api/v2/spot/market/candles?"
    status, body = _get(base + "symbol=NOPEUSDT&granularity=1min")
    assert status == 400 and body["code"] == "40034" and body["data"] is None
    assert _get(base + "symbol=BTCUSDT&granularity=2h")[1]["code"] == "40017"
    assert _get(base + "granularity=1min")[1]["code"] == "40019"
    hist = f"{emu.url}/api/v2/spot/market/history-candles?symbol=BTCUSDT&granularity=1min"
    assert _get(hist)[1]["code"] == "40019"  # endTime is mandatory there


def test_async_client(emu: EmulatorServer, df, at_end: int) -> None:
    async def run() -> list[list]:
        ex = make_exchange("bitget", base_url=emu.url, rate_limit=False, asynchronous=True)
        try:
            await ex.load_markets()
            return await ex.fetch_ohlcv("BTC/USDT", "5m", int(df.ts.iloc[5]), 50)
        finally:
            await ex.close()

    pd.testing.assert_frame_equal(_frame(asyncio.run(run())), df.iloc[5:55].reset_index(drop=True))
