"""ExchangeSession: what reaches the server is what `requests.Session` would send, the short path
is the one ccxt's calls take, everything else falls back to requests, and redirects are not
followed. Real ccxt and real requests against the loopback emulator."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from core import errors
from exchange.ccxt_client import make_exchange, translate_errors
from exchange.emulator import EmulatorServer, EmulatorState, Response
from exchange.http_session import ExchangeSession
from tests.exchange.candle_fixtures import sample_5m

SINCE = 1_672_531_200_000


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorServer]:
    with EmulatorServer(EmulatorState.from_frames({("BTC/USDT", "5m"): sample_5m().iloc[:300]})) as server:
        yield server


@pytest.fixture()
def seen(emu: EmulatorServer) -> Iterator[list[tuple[str, str, str, bytes, dict[str, str]]]]:
    """Every request the server receives: method, path, raw query, body, headers."""
    got: list[tuple[str, str, str, bytes, dict[str, str]]] = []

    def capture(req: Any, call_next: Any) -> Any:
        got.append((req.method, req.path, req.raw_query, req.body, dict(req.headers)))
        return call_next(req)

    emu.router.use(capture)
    yield got
    emu.router.remove(capture)


def _stock() -> requests.Session:
    s = requests.Session()
    s.trust_env = False  # what ccxt does with its own session
    return s


def test_ccxt_clients_get_the_session_and_take_its_short_path(emu: EmulatorServer, monkeypatch: Any) -> None:
    fallbacks: list[str] = []
    full = requests.Session.request
    monkeypatch.setattr(requests.Session, "request",
                        lambda self, method, url, **kw: (fallbacks.append(url), full(self, method, url, **kw))[1])
    for name in ("binance", "bitget"):
        ex = make_exchange(name, base_url=emu.url, rate_limit=False)
        assert isinstance(ex.session, ExchangeSession)
        ex.load_markets()
        rows = ex.fetch_ohlcv("BTC/USDT", "5m", SINCE, 5)
        assert [r[0] for r in rows] == [SINCE + i * 300_000 for i in range(5)]
    assert fallbacks == []


@pytest.mark.parametrize("method, path, body", [
    ("GET", "/api/v3/klines?symbol=BTCUSDT&interval=5m&limit=3", None),
    ("POST", "/api/v3/order", b"symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=0.001&price=20000"),
    ("DELETE", "/api/v3/order?symbol=BTCUSDT&origClientOrderId=x-1", b""),
])
def test_the_server_receives_the_same_request_as_from_requests(
    emu: EmulatorServer, seen: list[Any], method: str, path: str, body: bytes | None
) -> None:
    headers = {"X-MBX-APIKEY": "key", "Content-Type": "application/x-www-form-urlencoded"}
    answers = []
    for session in (_stock(), ExchangeSession()):
        r = session.request(method, emu.url + path, data=body, headers=headers, timeout=5, proxies=None,
                            verify=True, files=None)
        answers.append((r.status_code, r.content, r.headers.get("Content-Type")))
    assert len(seen) == 2 and seen[0] == seen[1]
    assert answers[0] == answers[1]


def test_a_none_header_removes_the_sessions_own_as_in_requests(emu: EmulatorServer, seen: list[Any]) -> None:
    for session in (_stock(), ExchangeSession()):
        session.request("GET", emu.url + "/api/v3/ping", headers={"Accept-Encoding": None, "X-A": "1"})
    assert seen[0][4] == seen[1][4]
    assert seen[1][4]["accept-encoding"] == "identity" and seen[1][4]["x-a"] == "1"  # http.client's default


@pytest.mark.parametrize("kw", [
    {"params": {"a": "1"}}, {"cookies": {"c": "1"}}, {"auth": ("u", "p")}, {"json": {"a": 1}},
    {"proxies": {"http": "http://127.0.0.1:9"}}, {"stream": True},
])
def test_anything_beyond_a_plain_call_goes_through_requests_itself(
    emu: EmulatorServer, monkeypatch: Any, kw: dict[str, Any]
) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(requests.Session, "request",
                        lambda self, method, url, **k: calls.append(k) or "from requests")
    assert ExchangeSession().request("GET", emu.url + "/api/v3/ping", **kw) == "from requests"
    assert calls and all(calls[0][k] == v for k, v in kw.items())


def test_session_wide_settings_also_go_through_requests(emu: EmulatorServer, monkeypatch: Any) -> None:
    monkeypatch.setattr(requests.Session, "request", lambda self, method, url, **k: "from requests")
    for setup in (lambda s: s.proxies.update(https="http://127.0.0.1:9"), lambda s: setattr(s, "trust_env", True),
                  lambda s: s.hooks["response"].append(lambda r, **k: r), lambda s: s.cookies.set("c", "1")):
        s = ExchangeSession()
        setup(s)
        assert s.request("GET", emu.url + "/api/v3/ping") == "from requests"


def test_a_redirect_is_not_followed_and_ccxt_reports_an_error(emu: EmulatorServer, seen: list[Any]) -> None:
    def moved(req: Any, call_next: Any) -> Any:
        if req.path == "/api/v3/time":
            return Response(302, {"msg": "moved"}, {"Location": emu.url + "/api/v3/ping"})
        return call_next(req)

    emu.router.use(moved)
    try:
        ex = make_exchange("binance", base_url=emu.url, rate_limit=False)
        with pytest.raises(errors.ExchangeError, match="fetching the server time") as e, \
                translate_errors("binance", "fetching the server time"):
            ex.fetch_time()
        cause = e.value.__cause__.__cause__  # ours <- ccxt's ExchangeError <- the session's
        assert isinstance(cause, requests.TooManyRedirects) and "302 redirect" in str(cause)
    finally:
        emu.router.remove(moved)
    assert [s[1] for s in seen] == ["/api/v3/time"]  # nothing was sent to the Location


def test_tls_is_verified_on_the_short_path_as_in_requests(tmp_path: Any) -> None:
    """A server whose certificate nobody trusts is refused; its own CA file or verify=False lets it in."""
    import shutil
    import ssl
    import subprocess
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a self-signed certificate")
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)

    class Ok(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *a: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Ok)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"https://127.0.0.1:{server.server_address[1]}/x"
    try:
        for session in (_stock(), ExchangeSession()):
            with pytest.raises(requests.exceptions.SSLError):
                session.request("GET", url, verify=True, timeout=5)
            assert session.request("GET", url, verify=str(cert), timeout=5).json() == {}
        with pytest.raises(requests.exceptions.SSLError):  # verify not given: the session's (True)
            ExchangeSession().request("GET", url, timeout=5)
    finally:
        server.shutdown()
        server.server_close()
