"""Loopback HTTP server that speaks Binance spot and Bitget v2 spot REST to real ccxt clients.

One server serves both venues: Binance under `/api/v3/...` and `/sapi/...`, Bitget under
`/api/v2/...` (plus Bitget's `/api/v3/account/settings` UTA probe, answered with an error so ccxt
stays on the classic endpoints). Both venues show the same markets and candles.

Time is the virtual clock of `state.clock`: server-time endpoints return it, and no candle opened
after it is ever served. The candle open at `now` is served partial, from what is known at `now`
only (see `exchange.emulator.candles`), so clients must drop it, as on the real exchanges.

    with EmulatorServer(EmulatorState.from_frames({("BTC/USDT", "1m"): df})) as emu:
        ex = make_exchange("binance", base_url=emu.url)     # exchange.ccxt_client
        emu.state.clock.advance(60_000)

Adding routes: write a provider `register_<venue>_<part>_routes(router, state)` that calls
`router.get/post/delete(path, handler, venue=..., weight=...)` with `handler(request) -> Response`
(see `exchange.emulator.router`). Handlers read `request.query`, `request.params()` (query + form),
`request.json()`, `request.raw_query`, `request.header(name)`; they return `Response(status, body,
headers)` or raise `HttpError(status, venue_error_body)`. Pass the providers to `EmulatorServer(...,
providers=[...])` or call them on `server.router` before/after `start()`; the table may change while
the server runs.

Adding middleware (fault injection, rate limits, auth): `server.router.use(mw)` with
`mw(request, call_next) -> Response`; `request.route` holds the matched route (venue, weight, tags)
or None. Sleep to add latency or force a client timeout, return a 5xx/429 `Response` without calling
`call_next`, or raise `DropConnection` before `call_next` (connection dropped) or after it (the
handler ran but the answer is lost). `server.router.remove(mw)` switches it off again.

Inspection: `state.requests` records every request (method, path, query, status, venue);
`state.snapshot()` pictures clock, markets and every `state.extensions[...]` with a `snapshot()`.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from exchange.emulator.router import DropConnection, Request, Response, Router
from exchange.emulator.state import EmulatorState, RequestRecord

log = logging.getLogger("aiotrade.emulator")

Provider = Callable[[Router, EmulatorState], Any]


def default_providers(venues: Iterable[str] = ("binance", "bitget")) -> list[Provider]:
    """The market-data route providers of the given venues."""
    from exchange.emulator.binance_market import register_binance_market_routes
    from exchange.emulator.bitget_market import register_bitget_market_routes

    table: dict[str, Provider] = {
        "binance": register_binance_market_routes,
        "bitget": register_bitget_market_routes,
    }
    unknown = [v for v in venues if v not in table]
    if unknown:
        raise ValueError(f"unknown venue(s) {unknown}; the emulator speaks {sorted(table)}")
    return [table[v] for v in venues]


class EmulatorServer:
    """The HTTP transport around a `Router`; `start()`/`stop()` or use it as a context manager."""

    def __init__(
        self,
        state: EmulatorState | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        providers: Iterable[Provider] | None = None,
        router: Router | None = None,
    ) -> None:
        self.state = state or EmulatorState()
        self.router = router or Router()
        for provider in default_providers() if providers is None else providers:
            provider(self.router, self.state)
        self._httpd = _HTTPServer((host, port), _Handler)
        self._httpd.emulator = self
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return str(self._httpd.server_address[0])

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> EmulatorServer:
        if self._thread is None:
            # A short poll interval makes stop() quick (tests start and stop many servers).
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, args=(0.05,), name="emulator-http", daemon=True
            )
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Block serving requests (the `aiotrade emulator` command)."""
        self._httpd.serve_forever()

    def stop(self) -> None:
        self._httpd.shutdown() if self._thread else None
        self._httpd.server_close()
        if self._thread:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def handle(self, request: Request) -> Response:
        """Dispatch one request through the router and record it (also usable without sockets)."""
        try:
            response = self.router.dispatch(request)
        except DropConnection:
            self._record(request, 0)
            raise
        except Exception:  # a bug in a handler: answer 500 like a real server, keep serving
            log.exception("emulator handler failed for %s %s", request.method, request.path)
            response = Response(500, {"code": -1000, "msg": "emulator internal error"})
        self._record(request, response.status)
        return response

    def _record(self, request: Request, status: int) -> None:
        venue = request.route.venue if request.route else ""
        self.state.requests.append(
            RequestRecord(request.method, request.path, dict(request.query), status, venue)
        )


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    emulator: EmulatorServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (timeout) or dropped the socket is normal here, not a server fault.
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError):
            log.debug("client %s went away: %r", client_address, exc)
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    # Keep-alive, as ccxt's session reuses connections; idle ones close after `timeout` seconds.
    protocol_version = "HTTP/1.1"
    timeout = 30
    # Without TCP_NODELAY, Nagle plus the client's delayed ACK add ~40 ms to an answer that leaves
    # in more than one write on a kept-alive connection.
    disable_nagle_algorithm = True
    # Buffer the answer so headers and body leave in one write (`handle_one_request` flushes after
    # each request): one syscall and one wake-up of the client instead of two per answer.
    wbufsize = 64 * 1024
    server: _HTTPServer

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._serve()

    do_POST = do_DELETE = do_PUT = do_GET  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        log.debug("%s %s", self.address_string(), format % args)

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        request = Request(
            method=self.command,
            path=parts.path,
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            raw_query=parts.query,
            body=body,
            headers={k.lower(): v for k, v in self.headers.items()},
            client=self.client_address[0],
        )
        try:
            response = self.server.emulator.handle(request)
        except DropConnection:
            self.close_connection = True
            return
        payload, content_type = response.encode()
        self.send_response(response.status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in response.headers.items():
            if name.lower() not in ("content-type", "content-length"):
                self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)
