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

import http.client
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from exchange.emulator.router import DropConnection, Request, Response, Router, parse_query
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
    """http.server's handler with a lean path for the requests clients send on every call.

    A plain `METHOD /path HTTP/1.1` request (GET, POST, DELETE, PUT) has its header lines split by
    hand instead of through `email.parser`, and its answer leaves as one bytes buffer with a Date
    header formatted once per second. The replay runs the emulator in the runner's process, so this
    parsing is paid from the runner's CPU on every call. Anything else (another HTTP version or
    method, an absolute or `//` target, an over-long request line) goes through http.server's own
    parsing and error answers, unchanged.
    """

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
    # Lower-cased header names -> values (the last one of a repeated header) of the current request.
    _lower_headers: dict[str, str]

    def handle_one_request(self) -> None:
        # BaseHTTPRequestHandler.handle_one_request with the lean path in front of parse_request.
        try:
            self.raw_requestline = self.rfile.readline(_MAX_LINE + 1)
            if len(self.raw_requestline) > _MAX_LINE:
                self.requestline = self.request_version = self.command = ""
                self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG)
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            lean = self._parse_lean()
            if lean is None:
                if not self.parse_request():
                    return  # http.server has answered the error
                if not hasattr(self, "do_" + self.command):
                    self.send_error(HTTPStatus.NOT_IMPLEMENTED, f"Unsupported method ({self.command!r})")
                    return
                self._lower_headers = {k.lower(): v for k, v in self.headers.items()}
            elif not lean:
                return  # a header error, answered
            self._serve()
            self.wfile.flush()
        except TimeoutError as e:  # a read or a write timed out: discard this connection
            self.log_error("Request timed out: %r", e)
            self.close_connection = True

    def _parse_lean(self) -> bool | None:
        """Request line and headers of a plain HTTP/1.1 request: True when parsed, False when an
        error was answered (header line too long, too many headers), None to leave it to http.server."""
        requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = requestline.split()
        if (
            len(words) != 3
            or words[2] != "HTTP/1.1"
            or words[0] not in _LEAN_METHODS
            or words[1][:1] != "/"
            or words[1][:2] == "//"
        ):
            return None
        self.requestline = requestline
        self.command, self.path, self.request_version = words
        self.close_connection = False
        headers = self._header_block()
        if headers is None:
            headers = self._header_lines()
            if headers is None:
                return False
        self._lower_headers = headers
        conntype = headers.get("connection", "").lower()
        if conntype == "close":
            self.close_connection = True
        elif conntype == "keep-alive":
            self.close_connection = False
        if headers.get("expect", "").lower() == "100-continue" and not self.handle_expect_100():
            return False
        return True

    def _header_block(self) -> dict[str, str] | None:
        """All header lines at once when the whole block is already buffered (the usual case: a
        client writes its request in one go) and every line ends in CRLF; else None, nothing read."""
        peek = getattr(self.rfile, "peek", None)  # a BufferedReader (http.server's default rbufsize)
        if peek is None:
            return None
        buf = peek(1)
        if buf[:2] == b"\r\n":
            self.rfile.read(2)
            return {}
        end = buf.find(b"\r\n\r\n")
        if end < 0 or end > _MAX_LINE:
            return None
        block = buf[:end]
        lines = block.split(b"\r\n")
        if len(lines) >= _MAX_HEADERS or block.count(b"\n") != len(lines) - 1:
            return None  # too many lines, or a bare LF: the line-by-line reading decides
        self.rfile.read(end + 4)
        headers: dict[str, str] = {}
        for line in str(block, "iso-8859-1").split("\r\n"):
            name, sep, value = line.partition(":")
            if sep:  # as email's compat32 policy: leading blanks dropped
                headers[name.lower()] = value.lstrip(" \t")
        return headers

    def _header_lines(self) -> dict[str, str] | None:
        """Header lines one by one, with http.server's limits (None: an error was answered)."""
        headers: dict[str, str] = {}
        readline, count = self.rfile.readline, 0
        while True:
            line = readline(_MAX_LINE + 1)
            if len(line) > _MAX_LINE:
                explain = str(http.client.LineTooLong("header line"))
                self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Line too long", explain)
                return None
            count += 1  # the blank line counts too, as in http.client
            if count > _MAX_HEADERS:
                self.send_error(
                    HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
                    "Too many headers",
                    f"got more than {_MAX_HEADERS} headers",
                )
                return None
            if line in (b"\r\n", b"\n", b""):
                return headers
            name, sep, value = str(line, "iso-8859-1").partition(":")
            if sep:  # as email's compat32 policy: leading blanks and the line end dropped
                headers[name.lower()] = value.lstrip(" \t").rstrip("\r\n")

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming (its own parsing path calls these)
        self._serve()

    do_POST = do_DELETE = do_PUT = do_GET  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        log.debug("%s %s", self.address_string(), format % args)

    def _serve(self) -> None:
        target = self.path
        path, _, query = target.partition("?")
        if "#" in target or not path.startswith("/"):  # fragments, absolute targets: urllib's reading
            parts = urlsplit(target)
            path, query = parts.path, parts.query
        headers = self._lower_headers
        length = int(headers.get("content-length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        request = Request(
            method=self.command,
            path=path,
            query=parse_query(query),
            raw_query=query,
            body=body,
            headers=headers,
            client=self.client_address[0],
        )
        try:
            response = self.server.emulator.handle(request)
        except DropConnection:
            self.close_connection = True
            return
        payload, content_type = response.encode()
        status = response.status
        if self.request_version == "HTTP/0.9":  # no status line nor headers, as send_response
            self.wfile.write(payload)
            return
        lines = [_status_line(status), _SERVER_LINE, _date_line()]
        lines.append(f"Content-Type: {content_type}\r\nContent-Length: {len(payload)}\r\n")
        for name, value in response.headers.items():
            low = name.lower()
            if low in ("content-type", "content-length"):
                continue
            lines.append(f"{name}: {value}\r\n")
            if low == "connection":  # as send_header: the answer may close the connection
                if value.lower() == "close":
                    self.close_connection = True
                elif value.lower() == "keep-alive":
                    self.close_connection = False
        lines.append("\r\n")
        self.wfile.write("".join(lines).encode("latin-1", "strict") + payload)
        if log.isEnabledFor(logging.DEBUG):
            self.log_request(status)


# http.server's limits: a request or header line of at most 65536 bytes, at most 100 header lines
# counting the blank one that ends them.
_MAX_LINE, _MAX_HEADERS = 65_536, 100
_LEAN_METHODS = frozenset(("GET", "POST", "DELETE", "PUT"))
_SERVER_LINE = f"Server: {_Handler.server_version} {_Handler.sys_version}\r\n"
_STATUS_LINES: dict[int, str] = {}
_date_cache: tuple[int, str] = (-1, "")


def _status_line(status: int) -> str:
    """`HTTP/1.1 200 OK` as `send_response_only` writes it (an unknown code gets an empty reason)."""
    line = _STATUS_LINES.get(status)
    if line is None:
        reason = _Handler.responses[status][0] if status in _Handler.responses else ""
        line = _STATUS_LINES[status] = f"{_Handler.protocol_version} {status} {reason}\r\n"
    return line


def _date_line() -> str:
    """The Date header as `date_time_string()` writes it, formatted once per wall-clock second."""
    global _date_cache
    now = time.time()
    second = int(now)
    cached = _date_cache
    if cached[0] != second:
        cached = _date_cache = (second, f"Date: {formatdate(now, usegmt=True)}\r\n")
    return cached[1]
