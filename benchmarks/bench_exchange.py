"""Exchange layer on loopback: create+cancel round trips through ccxt against the emulator, and the
emulator's own throughput, so the runner's latency figures can be separated from the emulator's cost.

Run: `python -m benchmarks exchange`. Figures only (p50/p99 in ms, requests/s) and their ratios.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path

import requests

from core.secrets import Credentials
from core.store import CandleStore
from exchange.ccxt_client import make_exchange
from exchange.ccxt_venue import CcxtVenue
from exchange.emulator import EmulatorServer, EmulatorState, Request, VirtualClock
from exchange.emulator.accounts import AccountSpec
from exchange.emulator.binance_trading import register_binance_trading_routes
from exchange.emulator.bitget_trading import register_bitget_trading_routes
from exchange.emulator.server import default_providers
from exchange.emulator.signing import binance_signature
from exchange.emulator.trading import install_trading
from exchange.port import OrderRequest, client_order_id

ROUND_TRIPS = 300
THROUGHPUT_S = 2.0
KEY, SECRET, PASS = "bench-key", "bench-secret", "bench-pass"
SAMPLE = Path(__file__).resolve().parents[1] / "pipeline" / "sample_data"


def _emulator() -> EmulatorServer:
    """Both venues over the bundled 2023 BTC/USDT 5m sample, wall-paced clock, a rich account."""
    df = CandleStore(SAMPLE).load("binance", "BTC/USDT", "5m").iloc[:2000].reset_index(drop=True)
    state = EmulatorState.from_frames(
        {("BTC/USDT", "5m"): df}, clock=VirtualClock(int(df.ts.iloc[1500]), speed=1.0)
    )
    install_trading(state, [AccountSpec("bench", KEY, SECRET, PASS, {"USDT": 1e9, "BTC": 1e3})])
    providers = [*default_providers(), register_binance_trading_routes, register_bitget_trading_routes]
    return EmulatorServer(state, providers=providers).start()


def _percentiles(samples_s: list[float]) -> tuple[float, float]:
    ms = sorted(s * 1000 for s in samples_s)
    return statistics.median(ms), ms[min(len(ms) - 1, int(round(0.99 * (len(ms) - 1))))]


def _time_loop(fn: Callable[[int], None], n: int) -> list[float]:
    fn(-1)  # warm-up (connection, markets)
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - t0)
    return out


def _raw_ccxt(name: str, url: str, price: float) -> list[float]:
    ex = make_exchange(
        name, base_url=url, rate_limit=False, credentials={"apiKey": KEY, "secret": SECRET, "password": PASS}
    )
    ex.load_markets()
    ex.load_time_difference()

    def trip(i: int) -> None:
        o = ex.create_order("BTC/USDT", "limit", "buy", 0.001, price)
        ex.cancel_order(o["id"], "BTC/USDT")

    return _time_loop(trip, ROUND_TRIPS)


def _adapter(name: str, url: str, price: float) -> list[float]:
    venue = CcxtVenue.connect(
        name, credentials=Credentials(name, KEY, SECRET, PASS), base_url=url, rate_limit=False
    )
    venue.load_markets()

    def trip(i: int) -> None:
        o = venue.create_order(
            OrderRequest("BTC/USDT", "buy", "limit", 0.001, client_order_id(f"{name}-{i}"), price)
        )
        venue.cancel_order("BTC/USDT", order_id=o.id)

    out = _time_loop(trip, ROUND_TRIPS)
    venue.close()
    return out


def _http_throughput(url: str, threads: int) -> float:
    """Signed GET /api/v3/openOrders from `threads` clients for THROUGHPUT_S seconds; requests/s."""
    stop = time.perf_counter() + THROUGHPUT_S
    counts = [0] * threads
    offset = int(requests.get(url + "/api/v3/time").json()["serverTime"] - time.time() * 1000)

    def worker(k: int) -> None:
        s = requests.Session()
        while time.perf_counter() < stop:
            q = f"symbol=BTCUSDT&timestamp={int(time.time() * 1000) + offset}&recvWindow=60000"
            r = s.get(
                f"{url}/api/v3/openOrders?{q}&signature={binance_signature(SECRET, q)}",
                headers={"X-MBX-APIKEY": KEY},
            )
            r.raise_for_status()
            counts[k] += 1

    pool = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return sum(counts) / THROUGHPUT_S


def _dispatch_throughput(server: EmulatorServer) -> float:
    """The same signed request through the router without sockets: the emulator's own cost."""
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < THROUGHPUT_S:
        q = f"symbol=BTCUSDT&timestamp={server.state.now_ms()}&recvWindow=60000"
        raw = f"{q}&signature={binance_signature(SECRET, q)}"
        req = Request(
            "GET",
            "/api/v3/openOrders",
            dict(p.split("=") for p in raw.split("&")),
            raw,
            b"",
            {"x-mbx-apikey": KEY},
        )
        assert server.handle(req).status == 200
        n += 1
    return n / (time.perf_counter() - t0)


def main() -> None:
    server = _emulator()
    try:
        price = round(float(server.state.candles.last_price("BTCUSDT", server.state.now_ms())) * 0.5, 2)
        rows = []
        for label, samples in (
            ("binance raw ccxt create+cancel (2 requests)", _raw_ccxt("binance", server.url, price)),
            (
                "binance CcxtVenue create+cancel (3: lookup, create, cancel)",
                _adapter("binance", server.url, price),
            ),
            ("bitget raw ccxt create+cancel (2 requests)", _raw_ccxt("bitget", server.url, price)),
            (
                "bitget CcxtVenue create+cancel (5: + fetch after create/cancel)",
                _adapter("bitget", server.url, price),
            ),
        ):
            p50, p99 = _percentiles(samples)
            rows.append((label, p50, p99))
            print(f"{label:66s} p50 {p50:6.2f} ms   p99 {p99:6.2f} ms   (n={len(samples)})")
        print(
            f"adapter / raw ccxt p50: binance {rows[1][1] / rows[0][1]:.2f}x, bitget {rows[3][1] / rows[2][1]:.2f}x"
        )
        one = _http_throughput(server.url, 1)
        four = _http_throughput(server.url, 4)
        inproc = _dispatch_throughput(server)
        print(
            f"emulator throughput, signed GET openOrders over HTTP: 1 client {one:7.0f} req/s, 4 clients {four:7.0f} req/s"
        )
        print(
            f"emulator in-process dispatch (no sockets):            {inproc:7.0f} req/s"
            f"  -> HTTP transport is {inproc / one:.1f}x the emulator's own cost per request"
        )
        print(f"per-request emulator cost {1000 / inproc:.3f} ms of a {1000 / one:.3f} ms loopback request")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
