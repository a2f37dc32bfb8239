"""Binance spot market data of the emulator, read by real ccxt clients (sync and async) over loopback."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Iterator

import ccxt
import pandas as pd
import pytest

from core.resample import resample
from exchange.ccxt_client import VENUES, make_exchange, redirect
from exchange.emulator import EmulatorServer, EmulatorState
from tests.exchange.candle_fixtures import sample_5m

FIVE = 300_000
ROWS = 2600  # 3 pages of 1000


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    return {p: sample_5m(p).iloc[:ROWS].reset_index(drop=True) for p in ("BTC/USDT", "ETH/USDT")}


@pytest.fixture(scope="module")
def emu(frames: dict[str, pd.DataFrame]) -> Iterator[EmulatorServer]:
    state = EmulatorState.from_frames({(p, "5m"): df for p, df in frames.items()})
    with EmulatorServer(state) as server:
        yield server


@pytest.fixture()
def at_end(emu: EmulatorServer, frames: dict[str, pd.DataFrame]) -> int:
    """Clock at the close of the last stored candle (every stored candle closed)."""
    return emu.state.clock.set(int(frames["BTC/USDT"].ts.iloc[-1]) + FIVE)


@pytest.fixture()
def ex(emu: EmulatorServer):
    return make_exchange("binance", base_url=emu.url, rate_limit=False)


def _ohlcv_frame(rows: list[list]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["ts", "open", "high", "low", "close", "volume"])
    return df.astype({"ts": "int64", **{c: "float64" for c in ["open", "high", "low", "close", "volume"]}})


def _get(url: str) -> tuple[int, object]:
    try:
        with urllib.request.urlopen(url) as f:
            return f.status, json.loads(f.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_spot_options_load_markets_with_one_request_and_the_right_rules(
    emu: EmulatorServer, ex, at_end: int
) -> None:
    emu.state.requests.clear()
    markets = ex.load_markets()
    assert [r.path for r in emu.state.requests] == ["/api/v3/exchangeInfo"]
    btc, eth = markets["BTC/USDT"], markets["ETH/USDT"]
    assert btc["spot"] and btc["active"] and btc["id"] == "BTCUSDT"
    assert (btc["precision"]["price"], btc["precision"]["amount"]) == (0.01, 0.00001)
    assert (btc["limits"]["amount"]["min"], btc["limits"]["cost"]["min"]) == (0.00001, 5.0)
    assert (eth["precision"]["price"], eth["precision"]["amount"]) == (0.01, 0.0001)


def test_default_ccxt_options_with_a_key_also_load_markets(emu: EmulatorServer, at_end: int) -> None:
    raw = ccxt.binance({"enableRateLimit": False, "apiKey": "k", "secret": "s"})
    redirect(raw, emu.url, keep_path=VENUES["binance"].keep_url_path)
    emu.state.requests.clear()
    assert "BTC/USDT" in raw.load_markets()
    paths = {r.path for r in emu.state.requests}
    assert {"/sapi/v1/capital/config/getall", "/fapi/v1/exchangeInfo", "/api/v3/exchangeInfo"} <= paths
    assert all(r.status == 200 for r in emu.state.requests)


def test_time_is_the_virtual_clock(emu: EmulatorServer, ex, at_end: int) -> None:
    assert ex.fetch_time() == at_end
    emu.state.clock.advance(42_000)
    assert ex.fetch_time() == at_end + 42_000


def test_paged_ohlcv_reproduces_the_stored_candles(emu, ex, frames, at_end: int) -> None:
    want = frames["BTC/USDT"]
    rows, since = [], int(want.ts.iloc[0])
    while True:
        page = ex.fetch_ohlcv("BTC/USDT", "5m", since, 1000)
        if not page:
            break
        rows += page
        since = page[-1][0] + FIVE
    klines = [r for r in emu.state.requests if r.path == "/api/v3/klines"]
    assert len(klines) == 4 and klines[0].query["limit"] == "1000"  # 3 full-ish pages, then an empty one
    pd.testing.assert_frame_equal(_ohlcv_frame(rows), want)


def test_never_a_candle_from_the_future_and_the_open_one_is_partial(emu, ex, frames) -> None:
    df = frames["BTC/USDT"]
    now = emu.state.clock.set(int(df.ts.iloc[1500]) + 60_000)  # one minute into candle 1500
    rows = ex.fetch_ohlcv("BTC/USDT", "5m", int(df.ts.iloc[1000]), 1000)
    assert rows[-1][0] == df.ts.iloc[1500] <= now and len(rows) == 501
    assert rows[-1][1:] == [df.open.iloc[1500]] * 4 + [0.0]  # only its open is known yet
    assert rows[-2][1:] == df.iloc[1499][["open", "high", "low", "close", "volume"]].tolist()
    emu.state.clock.advance(4 * 60_000)  # candle 1500 closes
    rows = ex.fetch_ohlcv("BTC/USDT", "5m", int(df.ts.iloc[1500]), 2)
    assert rows[0][1:] == df.iloc[1500][["open", "high", "low", "close", "volume"]].tolist()
    assert rows[1][0] == df.ts.iloc[1501] and rows[1][5] == 0.0


def test_without_since_the_newest_candles_come_back(emu, ex, frames) -> None:
    df = frames["BTC/USDT"]
    emu.state.clock.set(int(df.ts.iloc[2000]) + FIVE)
    rows = ex.fetch_ohlcv("BTC/USDT", "5m", limit=5)
    assert [r[0] for r in rows] == df.ts.iloc[1997:2002].tolist()  # 2001 is the just-opened candle


def test_hourly_candles_are_built_from_the_stored_5m(emu, ex, frames, at_end: int) -> None:
    df = frames["BTC/USDT"]
    rows = ex.fetch_ohlcv("BTC/USDT", "1h", int(df.ts.iloc[0]), 1000)
    got = _ohlcv_frame(rows)
    want = resample(df, "5m", "1h").reset_index(drop=True)
    got = got[got.ts.isin(want.ts)].reset_index(drop=True)
    assert len(got) == len(want) > 200
    pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-12)


def test_ticker_and_book_are_built_from_what_is_known_now(emu, ex, frames) -> None:
    df = frames["BTC/USDT"]
    now = emu.state.clock.set(int(df.ts.iloc[2000]) + FIVE)
    t = ex.fetch_ticker("BTC/USDT")
    day = df[(df.ts >= now - 86_400_000) & (df.ts <= now)]
    assert t["timestamp"] == now and t["last"] == df.open.iloc[2001]
    assert t["high"] == day.high.iloc[:-1].max() and t["low"] == min(
        day.low.iloc[:-1].min(), df.open.iloc[2001]
    )
    assert t["bid"] < t["last"] < t["ask"]
    book = ex.fetch_order_book("BTC/USDT", 5)
    bids, asks = [p for p, _ in book["bids"]], [p for p, _ in book["asks"]]
    assert bids == sorted(bids, reverse=True) and asks == sorted(asks) and bids[0] < t["last"] < asks[0]
    assert all(abs(p * 100 - round(p * 100)) < 1e-6 for p in bids + asks)  # on the 0.01 tick
    assert ex.fetch_tickers(["BTC/USDT", "ETH/USDT"]).keys() == {"BTC/USDT", "ETH/USDT"}


def test_bad_requests_get_binance_error_bodies(emu: EmulatorServer, at_end: int) -> None:
    base = emu.url + "/api/v3/klines?"
    assert _get(base + "symbol=NOPEUSDT&interval=1m") == (400, {"code": -1121, "msg": "Invalid symbol."})
    assert _get(base + "symbol=BTCUSDT&interval=7m") == (400, {"code": -1120, "msg": "Invalid interval."})
    assert _get(base + "interval=1m")[1]["code"] == -1102
    assert _get(base + "symbol=BTCUSDT&interval=5m&startTime=abc")[1]["code"] == -1100
    status, rows = _get(base + "symbol=BTCUSDT&interval=5m&limit=5000")
    assert status == 200 and len(rows) == 1000 and len(rows[0]) == 12  # capped like Binance, 12 fields
    assert rows[0][6] == rows[0][0] + FIVE - 1


def test_async_client_sees_the_same_candles(emu, frames, at_end: int) -> None:
    async def run() -> list[list]:
        ex = make_exchange("binance", base_url=emu.url, rate_limit=False, asynchronous=True)
        try:
            await ex.load_markets()
            return await ex.fetch_ohlcv("BTC/USDT", "5m", int(frames["BTC/USDT"].ts.iloc[10]), 20)
        finally:
            await ex.close()

    rows = asyncio.run(run())
    pd.testing.assert_frame_equal(_ohlcv_frame(rows), frames["BTC/USDT"].iloc[10:30].reset_index(drop=True))
