"""The emulator's per-request shortcuts give the answers of the slow paths they replace.

- candle windows of stored timeframes (two binary searches) and the matching engine's closed bars
  against the general bucket-and-cut algorithm, kept here as the oracle;
- the view cache and the sync skip across candles added, clock moves (forward, within a bar,
  backwards), orders placed (also with an earlier timestamp), cancels and fill-policy changes;
- formatted numbers (value caches, the per-row path for a few candles) against the plain formatting.
"""

from __future__ import annotations

import json
import random

import numpy as np
import pandas as pd
import pytest

from core.timeframes import timeframe_ms
from exchange.emulator import EmulatorState, VirtualClock, wire
from exchange.emulator.accounts import AccountSpec
from exchange.emulator.candles import TS, CandleBook, _aggregate, _bucket, _cut_at_now
from exchange.emulator.matching import FillPolicy, Reject
from exchange.emulator.trading import CandleBars, TradingState, install_trading
from tests.exchange.candle_fixtures import sample_5m

MIN, FIVE = 60_000, 300_000


def _oracle_window(
    book: CandleBook,
    symbol_id: str,
    tf: str,
    now_ms: int,
    start_ms: int | None = None,
    end_ms: int | None = None,
    limit: int = 500,
    newest: bool = False,
) -> np.ndarray:
    """`CandleBook.window` as it was before the stored-timeframe shortcut."""
    src = book.source_for(symbol_id, tf)
    if src is None or limit <= 0:
        return np.empty((0, 6))
    tf_ms = timeframe_ms(tf)
    hi_ms = now_ms if end_ms is None else min(end_ms, now_ms)
    lo_ms = -(2**62) if start_ms is None else start_ms
    if lo_ms > hi_ms:
        return np.empty((0, 6))
    ts = src.ts
    first = int(np.searchsorted(ts, _bucket(lo_ms, tf_ms), "left"))
    last = int(np.searchsorted(ts, _bucket(hi_ms, tf_ms) + tf_ms - 1, "right"))
    span = (limit + 1) * (tf_ms // src.tf_ms)
    first, last = (max(first, last - span), last) if newest else (first, min(last, first + span))
    rows = _cut_at_now(src.rows[first:last], src.tf_ms, now_ms)
    if src.tf_ms != tf_ms:
        rows = _aggregate(rows, tf_ms)
    rows = rows[(rows[:, TS] >= lo_ms) & (rows[:, TS] <= hi_ms)]
    return rows[-limit:] if newest else rows[:limit]


def _oracle_closed_bars(book: CandleBook, symbol_id: str, tf: str, start_ms: int, now_ms: int) -> np.ndarray:
    bar_ms = timeframe_ms(tf)
    rows = _oracle_window(book, symbol_id, tf, now_ms, start_ms=start_ms, limit=10**7)
    return rows[rows[:, TS] + bar_ms <= now_ms]


def _frames() -> dict[str, pd.DataFrame]:
    """5m candles on the grid, with gaps, and shifted 17 s off the grid; 1m and 1d stored too."""
    df5 = sample_5m().iloc[:3000].reset_index(drop=True)
    gappy = pd.concat([df5.iloc[:700], df5.iloc[900:1500], df5.iloc[1501:2100]]).reset_index(drop=True)
    shifted = df5.assign(ts=df5.ts + 17_000)
    one_min = df5.iloc[:600].assign(ts=df5.ts.iloc[0] + np.arange(600) * MIN)
    daily = df5.iloc[:40].assign(ts=(df5.ts.iloc[0] // 86_400_000) * 86_400_000 + np.arange(40) * 86_400_000)
    return {"AAAUSDT": df5, "BBBUSDT": gappy, "CCCUSDT": shifted, "DDDUSDT": one_min, "EEEUSDT": daily}


@pytest.fixture(scope="module")
def book() -> CandleBook:
    book = CandleBook()
    for sid, df in _frames().items():
        tf = {"DDDUSDT": "1m", "EEEUSDT": "1d"}.get(sid, "5m")
        book.add(sid, tf, df)
    return book


@pytest.mark.parametrize(
    "sid,tfs",
    [
        ("AAAUSDT", ["5m", "15m", "1h", "1d", "1w"]),
        ("BBBUSDT", ["5m", "1h"]),
        ("CCCUSDT", ["5m", "30m"]),
        ("DDDUSDT", ["1m", "5m", "1h"]),
        ("EEEUSDT", ["1d", "1w"]),
    ],
)
def test_windows_equal_the_bucket_and_cut_algorithm(book: CandleBook, sid: str, tfs: list[str]) -> None:
    rng = random.Random(sid)
    ts = book.source_for(sid, tfs[0]).ts  # type: ignore[union-attr]
    lo, hi = int(ts[0]), int(ts[-1])
    step = int(ts[1] - ts[0])
    for _ in range(400):
        tf = rng.choice(tfs)
        # Now on a candle boundary, inside a candle, or past the data; bounds anywhere near it.
        now = rng.choice([int(ts[rng.randrange(len(ts))]), rng.randrange(lo - step, hi + 3 * step)])
        now += rng.choice([0, 0, step, 1, step // 2, -1])
        start = rng.choice([None, now - rng.randrange(0, 40 * step), rng.randrange(lo - step, hi)])
        end = rng.choice(
            [None, None, now - rng.randrange(0, 10 * step), now + step, rng.randrange(lo, hi + step)]
        )
        limit = rng.choice([1, 2, 3, 17, 500, 1000, 100_000, 0])
        newest = rng.random() < 0.5
        got = book.window(sid, tf, now, start, end, limit, newest)
        want = _oracle_window(book, sid, tf, now, start, end, limit, newest)
        np.testing.assert_array_equal(
            got, want, err_msg=f"{sid} {tf} now={now} {start} {end} {limit} {newest}"
        )
        assert got.shape[1:] == (6,) and got.dtype == np.float64


@pytest.mark.parametrize(
    "sid,tf", [("AAAUSDT", "5m"), ("BBBUSDT", "5m"), ("CCCUSDT", "5m"), ("DDDUSDT", "5m")]
)
def test_closed_bars_equal_the_window_walk(book: CandleBook, sid: str, tf: str) -> None:
    state = EmulatorState(candles=book)
    bars = CandleBars(state, match_timeframe=tf)
    ts = book.source_for(sid, "1m" if sid == "DDDUSDT" else tf).ts  # type: ignore[union-attr]
    rng = random.Random(sid + tf)
    for _ in range(300):
        now = int(ts[rng.randrange(len(ts))]) + rng.choice([0, 1, FIVE, FIVE + 1, -1, 2 * MIN])
        start = rng.choice([0, now - rng.randrange(0, 30 * FIVE), now, now + FIVE, int(ts[0]) - FIVE])
        np.testing.assert_array_equal(
            bars.closed_bars(sid, start, now), _oracle_closed_bars(book, sid, tf, start, now)
        )


def test_candles_added_after_a_request_are_served(book: CandleBook) -> None:
    df = sample_5m().iloc[:200].reset_index(drop=True)
    fresh = CandleBook()
    fresh.add("XUSDT", "5m", df.iloc[:100])
    now = int(df.ts.iloc[150])
    assert len(fresh.window("XUSDT", "5m", now, limit=1000)) == 100
    assert fresh.window("XUSDT", "1h", now, limit=1000)[-1, TS] <= df.ts.iloc[99]
    version = fresh.version
    fresh.add("XUSDT", "5m", df)
    assert fresh.version != version
    assert len(fresh.window("XUSDT", "5m", now, limit=1000)) == 151
    np.testing.assert_array_equal(
        fresh.window("XUSDT", "1h", now, limit=1000), _oracle_window(fresh, "XUSDT", "1h", now, limit=1000)
    )
    fresh.add("XUSDT", "1m", df.assign(ts=df.ts.iloc[0] + np.arange(200) * MIN))
    np.testing.assert_array_equal(
        fresh.window("XUSDT", "5m", now, limit=1000), _oracle_window(fresh, "XUSDT", "5m", now, limit=1000)
    )
    assert fresh.view("XUSDT", "5m").stored and not fresh.view("XUSDT", "15m").stored  # type: ignore[union-attr]


# --- the sync skip ------------------------------------------------------------------------------


class _AlwaysMatch(TradingState):
    """`sync` as it was: match on every call."""

    def sync(self, now_ms: int | None = None) -> int:
        with self.state.lock:
            now = self.state.now_ms() if now_ms is None else now_ms
            return self.engine.match(self.accounts.values(), dict(self.state.markets), now)


def _pair(df: pd.DataFrame, start_ms: int) -> list[TradingState]:
    out = []
    for cls in (TradingState, _AlwaysMatch):
        state = EmulatorState.from_frames({("BTC/USDT", "5m"): df}, clock=VirtualClock(start_ms, speed=0))
        trading = cls(state, [AccountSpec("t", "k", "s", "p", {"USDT": 1e7, "BTC": 100.0})])
        state.extensions["trading"] = trading
        out.append(trading)
    return out


def _picture(trading: TradingState) -> dict:
    acc = trading.account("t")
    return {
        "orders": [vars(o) for o in acc.orders.values()],
        "trades": [vars(t) for t in acc.trades],
        "balances": {a: vars(b) for a, b in acc.balances.items()},
        "cursor": trading.engine.cursor_ms,
    }


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sync_skip_gives_the_fills_of_matching_every_time(seed: int) -> None:
    full = sample_5m().iloc[:1500].reset_index(drop=True)
    rng = random.Random(seed)
    first = int(full.ts.iloc[200])
    cut = 300  # the clock passes the candles' end; then the rest appear, at an unchanged clock
    pair = _pair(full.iloc[:cut], first)
    grown = False
    for step in range(500):
        action = rng.random()
        now = pair[0].state.now_ms()
        last = pair[0].state.candles.last_price("BTCUSDT", now) or 16_000.0
        if action < 0.25:
            delta = rng.choice([FIVE, FIVE, 2 * FIVE, MIN, 1, FIVE - 1, 7 * FIVE])
            for t in pair:
                t.state.clock.advance(delta)
        elif action < 0.55:
            side = rng.choice(["buy", "sell"])
            price = round(last * (1 + rng.choice([-1, 1]) * rng.random() * 0.004), 2)
            qty = rng.choice([0.001, 0.002, 0.01])
            # Mostly now; sometimes with an earlier timestamp (an order added by another path).
            at = now - rng.choice([0, 0, 0, 0, FIVE, 3 * FIVE + 7, MIN])
            for t in pair:
                try:
                    t.engine.place(
                        t.account("t"), t.state.markets["BTCUSDT"], side, "limit", qty, price, f"c{step}", at
                    )
                except Reject:
                    pass
        elif action < 0.7:
            open_ids = sorted(o.order_id for o in pair[0].account("t").open_orders())
            if open_ids:
                oid = rng.choice(open_ids)
                for t in pair:
                    acc = t.account("t")
                    t.engine.cancel(acc, t.state.markets["BTCUSDT"], acc.orders[oid], now)
        elif action < 0.74:
            policy = rng.choice([FillPolicy(), FillPolicy(max_fill_fraction=0.5), FillPolicy(touch=True)])
            for t in pair:
                t.set_fill_policy(policy)
        elif action < 0.76:
            back = rng.choice([MIN, FIVE, 4 * FIVE])
            for t in pair:
                t.state.clock.set(now - back)
        if not grown and now > int(full.ts.iloc[cut]) + 3 * FIVE:
            grown = True
            for t in pair:
                t.state.add_candles("BTC/USDT", "5m", full)
        for _ in range(rng.choice([1, 1, 2, 3])):
            fills = [t.sync() for t in pair]
            assert fills[0] == fills[1], f"step {step}"
        assert _picture(pair[0]) == _picture(pair[1]), f"step {step}"
    assert grown and len(pair[0].account("t").trades) > 50  # the scenario did fill orders


def test_sync_matches_again_after_the_clock_moves_or_an_order_may_fill_on_a_closed_bar() -> None:
    df = sample_5m().iloc[:400].reset_index(drop=True)
    state = EmulatorState.from_frames({("BTC/USDT", "5m"): df}, clock=VirtualClock(int(df.ts[100]), speed=0))
    trading = install_trading(state, [AccountSpec("t", "k", "s", "p", {"USDT": 1e7, "BTC": 100.0})])
    calls: list[int] = []
    match = trading.engine.match
    trading.engine.match = lambda *a: calls.append(a[2]) or match(*a)  # type: ignore[method-assign]
    acc, market = trading.account("t"), state.markets["BTCUSDT"]
    now = state.now_ms()
    trading.sync()
    trading.sync()
    assert calls == [now]  # the second one at the same now is skipped
    trading.engine.place(acc, market, "buy", "limit", 0.01, 1000.0, "a", now)  # rests from now on
    trading.sync()
    assert calls == [now]
    trading.engine.place(acc, market, "buy", "limit", 0.001, 99_999.0, "b", now - 2 * FIVE)  # earlier
    assert trading.sync() == 1 and calls == [now, now]
    state.clock.advance(1)
    trading.sync()
    assert calls == [now, now, now + 1]
    trading.set_fill_policy(FillPolicy(touch=True))
    trading.sync()
    assert len(calls) == 4


# --- formatting ---------------------------------------------------------------------------------


def test_cached_number_formats_equal_the_plain_ones() -> None:
    rng = np.random.default_rng(0)
    values = [0.0, -0.0, 1.0, -1.0, 0.1, 1e-9, 1.5e-12, 1e16, 1e22, 123456789.123, float("inf"), float("nan")]
    values += list(rng.random(2000) * 10.0 ** rng.integers(-10, 12, 2000))
    values += [round(v, 2) for v in rng.random(500) * 60_000] * 2  # repeats hit the caches
    for v in values * 2:
        assert wire.num(v) == wire._num(float(v))
        assert wire.fixed(v) == wire._fixed(v, 8)
        assert wire.fixed(v, 4) == wire._fixed(v, 4)
    assert (wire.num(-0.0), wire.fixed(-0.0), wire.num(0), wire.fixed(0)) == (
        "-0",
        "-0.00000000",
        "0",
        "0.00000000",
    )
    assert wire.num(np.float64(2.5)) == "2.5"


def test_candle_fields_of_a_few_rows_equal_the_numpy_path() -> None:
    rows = sample_5m().iloc[:3000][["ts", "open", "high", "low", "close", "volume"]].to_numpy(float)
    rng = np.random.default_rng(1)
    rows[::7, 5] = 0.0
    rows[::11, 5] = rng.random(len(rows[::11])) * 1e-6
    rows[::13, 5] *= 1e4
    big = wire.candle_fields(rows)  # the numpy path
    assert len(rows) > wire._SMALL_ROWS
    for i in range(0, len(rows), wire._SMALL_ROWS):
        chunk = rows[i : i + wire._SMALL_ROWS]
        assert wire.candle_fields(chunk) == big[i : i + len(chunk)]


def test_answers_encode_as_json_dumps() -> None:
    from exchange.emulator.router import Response, to_json

    bodies = [
        {},
        [],
        {"code": -1013, "msg": "Filter failure: NOTIONAL", "ok": True, "none": None},
        [[1672620900000, "16585.09", 0.1, -2.5e-12, 1e300, 2**70, False]],
        {"é": '€ " \\ \n', "nested": {"a": [1, {"b": []}]}, 5: "int key", 1.5: "float key"},
        [float("nan"), float("inf"), -float("inf")],
        "plain",
        7,
    ]
    for body in bodies:
        assert to_json(body) == json.dumps(body, separators=(",", ":"))
        assert Response(200, body).encode()[0] == json.dumps(
            body, separators=(",", ":")
        ).encode() or isinstance(body, str)
    with pytest.raises(TypeError, match="not JSON serializable"):
        to_json({"x": object()})
