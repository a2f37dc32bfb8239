"""The emulator's lean HTTP path against http.server's own parsing and writing, byte for byte.

The reference handler is the transport as it was before the lean path: `BaseHTTPRequestHandler`'s
`handle_one_request` and `parse_request` (email-based headers), `urlsplit` + `parse_qsl`, and the
answer written with `send_response` / `send_header` / `end_headers`. Both serve the same raw
requests (typical ccxt calls, and the odd ones that take http.server's path); what the handler saw
and every answer byte except the Date value must be equal.
"""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.emulator import DropConnection, EmulatorServer, EmulatorState, Request, Response, Router
from exchange.emulator.router import parse_query
from exchange.emulator.server import _Handler


class _ReferenceHandler(_Handler):
    """The transport before the lean path (http.server parsing and writing throughout)."""

    def handle_one_request(self) -> None:
        BaseHTTPRequestHandler.handle_one_request(self)

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


def _echo(req: Request) -> Response:
    return Response(
        200,
        {
            "method": req.method,
            "path": req.path,
            "query": req.query,
            "raw_query": req.raw_query,
            "headers": req.headers,
            "body": req.body.decode("latin-1"),
            "params": req.params(),
        },
        {"X-MBX-USED-WEIGHT-1M": "7", "content-type": "ignored/by-the-transport"},
    )


def _routes(router: Router, state: EmulatorState) -> None:
    for method in ("GET", "POST", "DELETE", "PUT"):
        router.add(method, "/echo", _echo)
    router.get("/closing", lambda req: Response(200, "bye", {"Connection": "close"}))
    router.get("/html", lambda req: Response(503, "<html>down</html>", {"Content-Type": "text/html"}))
    router.get("/raw", lambda req: Response(200, b"\x00\x01", {"Retry-After": "3"}))
    router.get("/odd-status", lambda req: Response(599, {"code": 1}))


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[EmulatorServer, EmulatorServer]]:
    lean = EmulatorServer(EmulatorState(), providers=[_routes])
    ref = EmulatorServer(EmulatorState(), providers=[_routes])
    ref._httpd.RequestHandlerClass = _ReferenceHandler
    with lean, ref:
        yield lean, ref


def _exchange(server: EmulatorServer, pieces: list[bytes], pause_s: float = 0.0) -> bytes:
    """Send `pieces` (pausing between them), close our side, read every answer byte."""
    with socket.create_connection((server.host, server.port), timeout=5) as s:
        for i, piece in enumerate(pieces):
            if i and pause_s:
                time.sleep(pause_s)
            s.sendall(piece)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


_DATE = re.compile(rb"\r\nDate: [A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT\r\n")


def _same_answers(
    servers: tuple[EmulatorServer, EmulatorServer], pieces: list[bytes], pause_s: float = 0.0
) -> bytes:
    lean, ref = servers
    got, want = _exchange(lean, pieces, pause_s), _exchange(ref, pieces, pause_s)
    assert got.count(b"\r\nDate: ") == len(_DATE.findall(got))  # the format http.server writes
    assert _DATE.sub(b"\r\nDate: -\r\n", got) == _DATE.sub(b"\r\nDate: -\r\n", want)
    return got


def _body(answer: bytes) -> Any:
    return json.loads(answer.split(b"\r\n\r\n", 1)[1])


CCXT_GET = (
    b"GET /echo?timestamp=1672621500000&symbol=BTCUSDT&orderId=4&recvWindow=10000&signature=ab12 HTTP/1.1\r\n"
    b"Host: 127.0.0.1:1234\r\nUser-Agent: python-requests/2.32.3\r\nAccept-Encoding: gzip, deflate\r\n"
    b"Accept: */*\r\nConnection: keep-alive\r\nX-MBX-APIKEY: key\r\n\r\n"
)
FORM = b"symbol=BTCUSDT&side=BUY&quantity=0.001&price=16500.12&newClientOrderId=x-TK%2Fa&empty="
CCXT_POST = (
    b"POST /echo?q=1 HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    b"X-MBX-APIKEY: key\r\nContent-Length: " + str(len(FORM)).encode() + b"\r\n\r\n" + FORM
)


def test_ccxt_get_and_form_post_are_seen_and_answered_as_http_server_does(servers: Any) -> None:
    got = _body(_same_answers(servers, [CCXT_GET]))
    assert got["query"]["orderId"] == "4" and got["headers"]["x-mbx-apikey"] == "key"
    got = _body(_same_answers(servers, [CCXT_POST]))
    assert got["params"]["newClientOrderId"] == "x-TK/a" and got["params"]["q"] == "1"


@pytest.mark.parametrize(
    "raw",
    [
        # Header spelling: case, blanks around the value (trailing ones are kept), a repeated header.
        b"GET /echo HTTP/1.1\r\nhOsT: h\r\nX-A:\t  spaced  \r\nX-B:no-space\r\nX-A: second\r\nX-Empty:\r\n\r\n",
        # Query decoding: escapes, '+', blanks, repeats, a bare name, empty pairs.
        b"GET /echo?a=%20x+y&b=&c&a=2&&d=%E2%82%AC&e=1%2B1 HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET /echo? HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET /echo?x=1#frag HTTP/1.1\r\nHost: h\r\n\r\n",  # a fragment: urllib's reading
        b"DELETE /echo?orderId=9 HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
        b'PUT /echo HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n{"a": 1}\n',
        # Bare LF line ends: the line-by-line reading.
        b"GET /echo?x=1 HTTP/1.1\nHost: h\nX-Y: z\n\n",
        b"GET /echo HTTP/1.1\r\nHost: h\nX-Y: z\r\n\r\n",
        # No header at all.
        b"GET /echo HTTP/1.1\r\n\r\n",
        # http.server's own path: another version, an absolute or '//' target, unknown methods.
        b"GET /echo?v=10 HTTP/1.0\r\nHost: h\r\n\r\n",
        b"GET http://127.0.0.1:9/echo?abs=1 HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET //echo?slashes=2 HTTP/1.1\r\nHost: h\r\n\r\n",
        b"HEAD /echo HTTP/1.1\r\nHost: h\r\n\r\n",
        b"PATCH /echo HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET /echo HTTP/2.0\r\nHost: h\r\n\r\n",
        b"GET /echo HTTP/1.1 extra\r\nHost: h\r\n\r\n",
        b"BAD\r\n\r\n",
        b"GET /echo?v=9\r\n",  # HTTP/0.9: the body alone
        b"POST /echo\r\n",
        # Answers with extra headers, other bodies and statuses, a 404, and one closing the connection.
        b"GET /html HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET /raw HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET /odd-status HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET /missing?x=1 HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET /closing HTTP/1.1\r\nHost: h\r\n\r\nGET /echo HTTP/1.1\r\nHost: h\r\n\r\n",
        # Connection handling: close, and two requests in one write on a kept-alive connection.
        b"GET /echo HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\nGET /echo?never=1 HTTP/1.1\r\nHost: h\r\n\r\n",
        CCXT_GET + CCXT_POST + CCXT_GET,
        # Expect: 100-continue answers "100 Continue" first.
        b"POST /echo HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\na=1",
    ],
)
def test_odd_requests_are_seen_and_answered_as_http_server_does(servers: Any, raw: bytes) -> None:
    _same_answers(servers, [raw])


def test_a_request_arriving_in_pieces_is_read_line_by_line(servers: Any) -> None:
    pieces = [CCXT_POST[:20], CCXT_POST[20:60], CCXT_POST[60:-10], CCXT_POST[-10:]]
    got = _body(_same_answers(servers, pieces, pause_s=0.05))
    assert got["params"]["price"] == "16500.12"


def test_limits_answer_like_http_server(servers: Any) -> None:
    many = b"".join(b"X-%d: v\r\n" % i for i in range(101))
    assert b" 431 " in _same_answers(servers, [b"GET /echo HTTP/1.1\r\n" + many + b"\r\n"])
    for n in (99, 100):  # http.client counts the blank line that ends them: 99 is the most
        lines = b"".join(b"X-%d: v\r\n" % i for i in range(n))
        status = b" 200 " if n == 99 else b" 431 "
        assert status in _same_answers(servers, [b"GET /echo HTTP/1.1\r\n" + lines + b"\r\n"])
        assert status in _same_answers(servers, [b"GET /echo HTTP/1.1\n" + lines.replace(b"\r", b"") + b"\n"])
    long_line = b"X-Long: " + b"a" * 70_000 + b"\r\n"
    assert b" 431 " in _same_answers(servers, [b"GET /echo HTTP/1.1\r\nHost: h\r\n" + long_line + b"\r\n"])
    long_target = b"GET /echo?" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n"
    assert b" 414 " in _same_answers(servers, [long_target])


def test_date_header_follows_the_wall_clock(servers: Any) -> None:
    lean, _ = servers
    first = _DATE.search(_exchange(lean, [CCXT_GET]))
    time.sleep(1.1)
    second = _DATE.search(_exchange(lean, [CCXT_GET]))
    assert first and second and first.group(0) != second.group(0)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab=&%+2x0F.-_~ ", max_size=40))
def test_parse_query_equals_parse_qsl(query: str) -> None:
    assert parse_query(query) == dict(parse_qsl(query, keep_blank_values=True))


def test_params_are_parsed_once_and_handed_out_as_copies() -> None:
    req = Request(
        "POST", "/x", {"a": "1"}, "a=1", b"b=2&a=3", {"content-type": "application/x-www-form-urlencoded"}
    )
    first = req.params()
    first["b"] = "changed"
    assert req.params() == {"a": "3", "b": "2"}


def test_middleware_added_or_removed_after_requests_applies_to_the_next_one() -> None:
    router = Router()
    router.get("/a", lambda req: Response(200, "a"))
    assert router.dispatch(Request("GET", "/a", {})).body == "a"

    def teapot(req: Request, call_next: Any) -> Response:
        return Response(418, "no")

    router.use(teapot)
    assert router.dispatch(Request("GET", "/a", {})).status == 418
    router.remove(teapot)
    assert router.dispatch(Request("GET", "/a", {})).status == 200
    router.not_found = lambda req: Response(410, "gone")
    assert router.dispatch(Request("GET", "/b", {})).status == 410
