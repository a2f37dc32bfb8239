"""Emulator market-data throughput through real ccxt clients on loopback, next to the raw HTTP cost.

    .venv/bin/python -m benchmarks emulator

Serves one year of 1m candles (real BTC/USDT 1m from ../shared tiled to 525,600 rows, synthetic
when ../shared is absent) and measures, single client, sequential requests:
- Binance klines (1000 x 1m, random `since`) through ccxt, and the same requests with urllib
  (no ccxt parsing): the ratio separates emulator cost from client cost;
- Bitget history-candles (200 x 1m) through ccxt;
- Binance 1h klines aggregated on the fly from the 1m candles;
- `aiotrade download` of 30 days of 1m candles into a fresh store (candles/s, pages written).
"""

from __future__ import annotations

import random
import tempfile
import time
import urllib.request
from collections.abc import Callable

from benchmarks.bench_store import one_year_of_1m
from exchange.ccxt_client import make_exchange
from exchange.emulator import EmulatorServer, EmulatorState
from pipeline.download import run_download

SECONDS_PER_CASE = 2.0
DAY_MS = 86_400_000


def _rate(fn: Callable[[int], object], seconds: float = SECONDS_PER_CASE) -> float:
    """Calls per second of `fn(i)` over about `seconds`."""
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn(n)
        n += 1
    return n / (time.perf_counter() - t0)


def main() -> None:
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
    main()
