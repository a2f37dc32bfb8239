"""Emulator core without ccxt: router and middleware chain, virtual clock, candle book, transport."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import numpy as np
import pandas as pd
import pytest

from core.resample import resample
from exchange.emulator import (
    DropConnection,
    EmulatorServer,
    EmulatorState,
    HttpError,
    Request,
    Response,
    Router,
    VirtualClock,
)
from exchange.emulator.candles import CLOSE, HIGH, LOW, OPEN, TS, VOLUME
from tests.exchange.candle_fixtures import sample_5m

MIN = 60_000
FIVE = 5 * MIN


def _req(method: str = "GET", path: str = "/x", **query: str) -> Request:
    return Request(method=method, path=path, query=dict(query))


# --- router -------------------------------------------------------------------------------------


def test_router_dispatches_by_method_and_path_and_404s_the_rest() -> None:
    r = Router()
    r.get("/a", lambda req: Response(200, {"got": req.query}), venue="v", weight=7)
    assert r.dispatch(_req(path="/a", k="1")).body == {"got": {"k": "1"}}
    assert r.dispatch(_req("POST", "/a")).status == 404
    assert r.dispatch(_req(path="/b")).status == 404
    assert r.match("GET", "/a").weight == 7 and r.match("GET", "/a").venue == "v"


def test_router_refuses_silent_route_replacement() -> None:
    r = Router()
    r.get("/a", lambda req: Response(200, 1))
    with pytest.raises(ValueError, match="already registered"):
        r.get("/a", lambda req: Response(200, 2))
    r.get("/a", lambda req: Response(200, 2), replace=True)
    assert r.dispatch(_req(path="/a")).body == 2


def test_middleware_runs_outermost_first_sees_the_route_and_can_short_circuit() -> None:
    r = Router()
    seen: list[str] = []
    r.get("/a", lambda req: (seen.append("handler"), Response(200, "ok"))[1], weight=3)

    def outer(req: Request, call_next):
        seen.append(f"outer weight={req.route.weight}")
        resp = call_next(req)
        resp.headers["X-Outer"] = "1"
        return resp

    def inner(req: Request, call_next):
        seen.append("inner")
        if req.query.get("fail"):
            return Response(503, {"code": -1, "msg": "injected"})
        return call_next(req)

    r.use(outer)
    r.use(inner)
    resp = r.dispatch(_req(path="/a"))
    assert seen == ["outer weight=3", "inner", "handler"] and resp.headers["X-Outer"] == "1"
    seen.clear()
    resp = r.dispatch(_req(path="/a", fail="1"))
    assert resp.status == 503 and seen == ["outer weight=3", "inner"]
    r.remove(inner)
    seen.clear()
    r.dispatch(_req(path="/a", fail="1"))
    assert seen == ["outer weight=3", "handler"]


def test_http_error_from_handler_becomes_the_venue_error_body() -> None:
    r = Router()

    def bad(req: Request) -> Response:
        raise HttpError(400, {"code": -1121, "msg": "Invalid symbol."})

    r.get("/a", bad)
    resp = r.dispatch(_req(path="/a"))
    assert (resp.status, resp.body) == (400, {"code": -1121, "msg": "Invalid symbol."})


def test_request_parses_form_json_and_merged_params() -> None:
    req = Request(
        "POST", "/o", {"a": "1"}, "a=1", b"b=2&c=x%20y", {"content-type": "application/x-www-form-urlencoded"}
    )
    assert req.form() == {"b": "2", "c": "x y"} and req.params() == {"a": "1", "b": "2", "c": "x y"}
    jreq = Request("POST", "/o", {}, "", b'{"size":"0.1"}', {"content-type": "application/json"})
    assert jreq.json() == {"size": "0.1"} and jreq.params() == {}
    with pytest.raises(HttpError):
        Request("POST", "/o", {}, "", b"{not json", {}).json()


# --- clock --------------------------------------------------------------------------------------


def test_clock_speed_advance_set_and_freeze() -> None:
    wall = [1_000.0]
    clock = VirtualClock(start_ms=1_700_000_000_000, speed=60.0, wall_ms=lambda: wall[0])
    wall[0] += 1_000  # one real second at x60 is one virtual minute
    assert clock.now_ms() == 1_700_000_060_000
    assert clock.advance(5 * MIN) == 1_700_000_360_000
    clock.set_speed(0)
    wall[0] += 10_000
    assert clock.now_ms() == 1_700_000_360_000
    assert clock.set(42) == 42 and clock.now_ms() == 42
    with pytest.raises(ValueError):
        clock.advance(-1)


# --- candle book --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def df5() -> pd.DataFrame:
    return sample_5m().iloc[:2000].reset_index(drop=True)


def _state(df: pd.DataFrame, now_ms: int) -> EmulatorState:
    return EmulatorState.from_frames({("BTC/USDT", "5m"): df}, clock=VirtualClock(now_ms, speed=0))


def test_window_serves_stored_candles_and_nothing_opened_after_now(df5: pd.DataFrame) -> None:
    now = int(df5.ts.iloc[100]) + FIVE  # candle 100 has just closed
    book = _state(df5, now).candles
    rows = book.window("BTCUSDT", "5m", now, start_ms=int(df5.ts.iloc[0]), limit=1000)
    assert rows[:, TS].max() <= now
    # 101 closed candles, exactly the stored ones, plus the candle that opened at `now` (partial).
    expected = df5.iloc[:101][["ts", "open", "high", "low", "close", "volume"]].to_numpy(dtype=float)
    np.testing.assert_array_equal(rows[:101], expected)
    assert len(rows) == 102 and rows[-1, TS] == now


def test_open_candle_is_partial_open_price_only(df5: pd.DataFrame) -> None:
    now = int(df5.ts.iloc[100]) + 2 * MIN  # two minutes into candle 100
    rows = _state(df5, now).candles.window("BTCUSDT", "5m", now, limit=3, newest=True)
    last = rows[-1]
    assert last[TS] == df5.ts.iloc[100]
    assert last[OPEN] == last[HIGH] == last[LOW] == last[CLOSE] == df5.open.iloc[100] and last[VOLUME] == 0
    np.testing.assert_array_equal(
        rows[-2, 1:], df5.iloc[99][["open", "high", "low", "close", "volume"]].to_numpy(float)
    )


def test_aggregated_timeframe_equals_closed_candle_resample(df5: pd.DataFrame) -> None:
    now = int(df5.ts.iloc[-1]) + FIVE
    rows = _state(df5, now).candles.window("BTCUSDT", "1h", now, start_ms=0, limit=1000)
    want = resample(df5, "5m", "1h")
    got = pd.DataFrame(rows, columns=["ts", "open", "high", "low", "close", "volume"]).astype({"ts": "int64"})
    got = got[got.ts.isin(want.ts)].reset_index(drop=True)
    assert len(got) == len(want) > 100
    pd.testing.assert_frame_equal(got, want.reset_index(drop=True), check_exact=False, rtol=1e-12)


def test_newest_window_ends_at_end_bound_and_first_window_starts_at_start(df5: pd.DataFrame) -> None:
    now = int(df5.ts.iloc[-1]) + FIVE
    book = _state(df5, now).candles
    end = int(df5.ts.iloc[500])
    newest = book.window("BTCUSDT", "5m", now, end_ms=end, limit=10, newest=True)
    assert list(newest[:, TS].astype(int)) == list(df5.ts.iloc[491:501])
    first = book.window("BTCUSDT", "5m", now, start_ms=end, limit=10)
    assert list(first[:, TS].astype(int)) == list(df5.ts.iloc[500:510])


def test_page_from_start_skips_a_gap_like_binance(df5: pd.DataFrame) -> None:
    gappy = pd.concat([df5.iloc[:100], df5.iloc[600:700]]).reset_index(drop=True)
    now = int(gappy.ts.iloc[-1]) + FIVE
    rows = _state(gappy, now).candles.window("BTCUSDT", "5m", now, start_ms=int(df5.ts.iloc[100]), limit=50)
    assert list(rows[:, TS].astype(int)) == list(df5.ts.iloc[600:650])


def test_state_snapshot_lists_markets_rules_and_extensions(df5: pd.DataFrame) -> None:
    state = _state(df5, int(df5.ts.iloc[-1]))

    class Ext:
        def snapshot(self) -> dict:
            return {"orders": 0}

    state.extensions["trading"] = Ext()
    snap = state.snapshot()
    assert (
        snap["markets"]["BTCUSDT"]["tick_size"] == 0.01 and snap["markets"]["BTCUSDT"]["min_notional"] == 5.0
    )
    assert snap["markets"]["BTCUSDT"]["timeframes"] == ["5m"] and snap["trading"] == {"orders": 0}


def test_default_clock_stands_at_the_close_of_the_newest_candle(df5: pd.DataFrame) -> None:
    state = EmulatorState.from_frames({("BTC/USDT", "5m"): df5})
    assert state.now_ms() == int(df5.ts.iloc[-1]) + FIVE


# --- transport ----------------------------------------------------------------------------------


def test_server_round_trip_404_500_and_dropped_connection() -> None:
    def boom(req: Request) -> Response:
        raise RuntimeError("bug")

    def provider(router: Router, state: EmulatorState) -> None:
        router.get("/echo", lambda req: Response(200, {"q": req.query, "body": req.body.decode()}), venue="t")
        router.post("/echo", lambda req: Response(201, {"form": req.form()}, {"X-A": "b"}), venue="t")
        router.get("/boom", boom)

    with EmulatorServer(providers=[provider]) as emu:
        with urllib.request.urlopen(emu.url + "/echo?a=1&b=") as f:
            assert json.loads(f.read()) == {"q": {"a": "1", "b": ""}, "body": ""}
        post = urllib.request.Request(emu.url + "/echo", data=b"x=1", method="POST")
        with urllib.request.urlopen(post) as f:
            assert (
                f.status == 201 and f.headers["X-A"] == "b" and json.loads(f.read()) == {"form": {"x": "1"}}
            )
        for path, status in (("/nope", 404), ("/boom", 500)):
            with pytest.raises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(emu.url + path)
            assert e.value.code == status

        def drop(req: Request, call_next):
            call_next(req)  # the handler runs, the answer is lost
            raise DropConnection()

        emu.router.use(drop)
        with pytest.raises((ConnectionError, urllib.error.URLError)):
            urllib.request.urlopen(emu.url + "/echo")
        statuses = [(r.path, r.status) for r in emu.state.requests]
        assert statuses == [("/echo", 200), ("/echo", 201), ("/nope", 404), ("/boom", 500), ("/echo", 0)]
