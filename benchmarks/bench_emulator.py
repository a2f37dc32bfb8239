"""Emulator market-data throughput through real ccxt clients on loopback, next to the raw HTTP cost.

    .venv/bin/python -m benchmarks emulator

Serves one year of 1m candles (real BTC/USDT 1m from ../shared tiled to 525,600 rows, synthetic
when ../shared is absent) and measures, single client, sequential requests:
- Binance klines (1000 x 1m, random `since`) through ccxt, and the same requests with urllib
  (no ccxt parsing): the ratio separates emulator cost from client cost;
- Bitget history-candles (200 x 1m) through ccxt;
- Binance 1h klines aggregated on the fly from the 1m candles;
- `aiotrade download` of 30 days of 1m candles into a fresh store (candles/s, pages written).

First, the CPU the emulator spends per request on the routes a live replay uses, through real ccxt
(signed Binance and Bitget clients on the bundled 5m candles, the virtual clock moved one bar per
round as the replay moves it): per round candles since two bars back, one limit order near the price
(it fills now and then) and one far from it, a cancel of the previous round's far order (and of the
oldest near one while more than 8 rest), and the trades of the last three bars. Figures are the CPU time of the emulator's connection thread per
request (`time.thread_time`, so the client's own CPU is not counted): all of it (HTTP parsing and
writing included) and the part inside routing + handler; medians, as other processes sharing the
cores inflate single requests. The live replay runs the emulator in the
runner's process, so every microsecond here is taken from the runner.

    .venv/bin/python -m benchmarks.bench_emulator requests     # only this part
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict, deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.bench_store import one_year_of_1m
from core.store import CandleStore
from exchange.ccxt_client import make_exchange
from exchange.emulator import EmulatorServer, EmulatorState, VirtualClock
from exchange.emulator import server as emulator_server
from exchange.emulator.accounts import AccountSpec
from exchange.emulator.server import default_providers
from exchange.emulator.trading import install_trading, trading_providers
from pipeline.download import run_download

SECONDS_PER_CASE = 2.0
DAY_MS = 86_400_000
SAMPLE = Path(__file__).resolve().parents[1] / "pipeline" / "sample_data"
BAR_MS = 300_000
ROUNDS = 400
GRID_ORDERS = 8
KEY, SECRET, PASSPHRASE = "bench-key", "bench-secret", "bench-pass"


class _CpuPerRoute:
    """CPU time of the emulator's connection threads per request, by "METHOD /path".

    Wraps `_Handler.handle_one_request` (one call = one request, HTTP parsing and writing included;
    the wait for the next request on a kept-alive socket blocks and costs no CPU) and
    `EmulatorServer.handle` (routing, middleware and the handler)."""

    def __init__(self) -> None:
        self.full: dict[str, list[float]] = defaultdict(list)
        self.inner: dict[str, list[float]] = defaultdict(list)
        self._saved: list[tuple[Any, str, Any]] = []

    def __enter__(self) -> _CpuPerRoute:
        handler_cls, server_cls = emulator_server._Handler, emulator_server.EmulatorServer
        one, handle = handler_cls.handle_one_request, server_cls.handle
        full, inner = self.full, self.inner

        def timed_one(h: Any) -> None:
            h.command = None
            t0 = time.thread_time()
            one(h)
            dt = time.thread_time() - t0
            if h.command:
                full[f"{h.command} {h.path.split('?', 1)[0]}"].append(dt)

        def timed_handle(srv: Any, req: Any) -> Any:
            t0 = time.thread_time()
            try:
                return handle(srv, req)
            finally:
                inner[f"{req.method} {req.path}"].append(time.thread_time() - t0)

        self._saved = [(handler_cls, "handle_one_request", one), (server_cls, "handle", handle)]
        handler_cls.handle_one_request = timed_one  # type: ignore[method-assign]
        server_cls.handle = timed_handle  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        for cls, name, fn in self._saved:
            setattr(cls, name, fn)


def _replay_rounds(ex: Any, state: EmulatorState, first_ms: int, rounds: int) -> dict[str, float]:
    """The replay's request mix, `rounds` bars; returns client wall ms per bar per call kind."""
    wall: dict[str, float] = defaultdict(float)
    account = state.extensions["trading"].account("bench")
    far: str | None = None
    near: deque[str] = deque()
    state.clock.set(first_ms)
    # As the runner asks: Binance klines from `since` with its page size; Bitget's history-candles
    # (ccxt's choice for an old `since`) take at most 200, or ccxt moves startTime past `since`.
    limit = 1000 if ex.id == "binance" else 200

    def call(kind: str, fn: Callable[..., Any], *a: Any, **k: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            wall[kind] += (time.perf_counter() - t0) * 1000.0 / rounds

    for i in range(rounds):
        now = state.clock.advance(BAR_MS)
        # Signed timestamps on the virtual clock, 2 s back: a slow round stays inside the recvWindow.
        ex.options["timeDifference"] = int(ex.milliseconds()) - now + 2_000
        rows = call("candles", ex.fetch_ohlcv, "BTC/USDT", "5m", now - 2 * BAR_MS, limit)
        last = rows[-2][4] if len(rows) > 1 else rows[-1][4]
        side = "buy" if i % 2 == 0 else "sell"
        price = last * (0.999 if side == "buy" else 1.001)
        near.append(call("create", ex.create_order, "BTC/USDT", "limit", side, 0.001, price)["id"])
        if far is not None:
            call("cancel", ex.cancel_order, far, "BTC/USDT")
        far = call("create", ex.create_order, "BTC/USDT", "limit", "buy", 0.001, round(last * 0.5, 2))["id"]
        # A grid's worth of resting orders at most, as in the replay: the oldest still open goes.
        while len([o for o in near if account.orders[int(o)].is_open]) > GRID_ORDERS:
            oldest = near.popleft()
            if account.orders[int(oldest)].is_open:
                call("cancel", ex.cancel_order, oldest, "BTC/USDT")
        call("trades", ex.fetch_my_trades, "BTC/USDT", now - 3 * BAR_MS, 1000, {"endTime": now})
    return wall


def per_request_cpu(rounds: int = ROUNDS) -> None:
    df = CandleStore(SAMPLE).load("binance", "BTC/USDT", "5m")
    first_ms = int(df.ts.iloc[300]) + BAR_MS
    print(
        f"per-request CPU of the emulator thread, replay request mix, {rounds} bars of 5m per venue "
        f"(bundled BTC/USDT 5m, {len(df):,} rows), through real ccxt:"
    )
    for venue in ("binance", "bitget"):
        state = EmulatorState.from_frames({("BTC/USDT", "5m"): df}, clock=VirtualClock(first_ms, speed=0.0))
        install_trading(state, [AccountSpec("bench", KEY, SECRET, PASSPHRASE, {"USDT": 1e9, "BTC": 1e5})])
        creds = {"apiKey": KEY, "secret": SECRET, "password": PASSPHRASE}
        with EmulatorServer(state, providers=[*default_providers(), *trading_providers()]) as emu:
            ex = make_exchange(venue, base_url=emu.url, rate_limit=False, credentials=creds)
            ex.load_markets()
            _replay_rounds(ex, state, first_ms, 20)  # warm-up: connections, lazy imports
            with _CpuPerRoute() as cpu:
                wall = _replay_rounds(ex, state, first_ms + 40 * BAR_MS, rounds)
            fills = len(state.extensions["trading"].account("bench").trades)
        total_ms = sum(sum(v) for v in cpu.full.values()) * 1000.0
        n = sum(len(v) for v in cpu.full.values())
        print(
            f"  {venue}: {n} requests, emulator thread {total_ms / rounds:.3f} ms/bar, {fills} fills; "
            f"client wall per bar: " + ", ".join(f"{k} {v:.2f} ms" for k, v in wall.items())
        )
        for route, times in sorted(cpu.full.items(), key=lambda kv: -sum(kv[1])):
            full_us = 1e6 * statistics.median(times)
            inner = cpu.inner.get(route, [])
            inner_us = 1e6 * statistics.median(inner) if inner else float("nan")
            print(
                f"    {route:<38} {len(times):5d} req  median {full_us:6.1f} us/req CPU "
                f"(routing + handler {inner_us:6.1f}, HTTP and the rest {full_us - inner_us:6.1f}); "
                f"mean {1e6 * statistics.fmean(times):6.1f}"
            )


def _rate(fn: Callable[[int], object], seconds: float = SECONDS_PER_CASE) -> float:
    """Calls per second of `fn(i)` over about `seconds`."""
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn(n)
        n += 1
    return n / (time.perf_counter() - t0)


def main() -> None:
    per_request_cpu()
    market_data()


def market_data() -> None:
    df, source = one_year_of_1m()
    t0 = time.perf_counter()
    state = EmulatorState.from_frames({("BTC/USDT", "1m"): df})
    print(
        f"data: {source}, {len(df):,} rows; emulator state built in {1000 * (time.perf_counter() - t0):.0f} ms"
    )
    first, last = int(df.ts.iloc[0]), int(df.ts.iloc[-1])
    rng = random.Random(0)
    starts = [rng.randrange(first, last - 1000 * 60_000, 60_000) for _ in range(10_000)]
    with EmulatorServer(state) as emu:
        binance = make_exchange("binance", base_url=emu.url, rate_limit=False)
        bitget = make_exchange("bitget", base_url=emu.url, rate_limit=False)
        binance.load_markets()
        bitget.load_markets()
        opener = urllib.request.build_opener()

        def raw(i: int) -> object:
            url = f"{emu.url}/api/v3/klines?symbol=BTCUSDT&interval=1m&limit=1000&startTime={starts[i % len(starts)]}"
            with opener.open(url) as f:
                return f.read()

        cases = {
            "binance klines 1000x1m, urllib (no ccxt)": (raw, 1000),
            "binance klines 1000x1m, ccxt": (
                lambda i: binance.fetch_ohlcv("BTC/USDT", "1m", starts[i % len(starts)], 1000),
                1000,
            ),
            "bitget history-candles 200x1m, ccxt": (
                lambda i: bitget.fetch_ohlcv("BTC/USDT", "1m", starts[i % len(starts)], 200),
                200,
            ),
            "binance klines 1000x1h from 1m, ccxt": (
                lambda i: binance.fetch_ohlcv("BTC/USDT", "1h", first + (i % 200) * DAY_MS, 1000),
                1000,
            ),
            "binance time, ccxt": (lambda i: binance.fetch_time(), 0),
        }
        rates = {}
        for name, (fn, candles) in cases.items():
            rates[name] = r = _rate(fn)
            per = f", {r * candles:,.0f} candles/s" if candles else ""
            print(f"{name:<42} {r:8.1f} req/s  ({1000 / r:6.2f} ms/req{per})")
        ref = rates["binance klines 1000x1m, urllib (no ccxt)"]
        print(
            f"ratio ccxt/urllib for 1000x1m klines: {rates['binance klines 1000x1m, ccxt'] / ref:.2f} (share of time in the client)"
        )

        with tempfile.TemporaryDirectory() as tmp:
            since = last - 30 * DAY_MS
            t0 = time.perf_counter()
            (res,) = run_download(
                "binance", ["BTC/USDT"], ["1m"], since, None, tmp, base_url=emu.url, rate_limit=False
            )
            dt = time.perf_counter() - t0
        print(f"download 30 days of 1m (binance, rate limiter off): {res.added:,} candles in {res.pages} pages, "
              f"{dt:.2f} s = {res.added / dt:,.0f} candles/s")  # fmt: skip


if __name__ == "__main__":
    per_request_cpu() if sys.argv[1:] == ["requests"] else main()
