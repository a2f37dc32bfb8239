"""Route table and middleware chain of the emulator: transport-free, so it is testable without sockets.

A handler is `handler(request: Request) -> Response`. Routes are keyed `("METHOD", "/path")`; each
route carries metadata (`venue`, `weight` for rate limiting, free-form `tags`) that middleware can
read from `request.route`. Middleware is `mw(request, call_next) -> Response`; the first one added is
the outermost. A middleware may sleep (latency, timeouts), answer on its own (5xx, 429), or raise
`DropConnection` before or after calling `call_next` (a dropped connection, or an answer lost after
the handler ran). Handlers raise `HttpError` to answer with an error body from deep inside.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any
from urllib.parse import parse_qsl

Handler = Callable[["Request"], "Response"]
# `json.dumps(body, separators=(",", ":"))`, with the encoder made once instead of per answer:
# json's C encoder called directly (no circular-reference check: answers are trees).
_JSON = json.JSONEncoder(separators=(",", ":"))
_C_ENCODE = (
    None
    if c_make_encoder is None
    else c_make_encoder(None, _JSON.default, encode_basestring_ascii, None, ":", ",", False, False, True)
)


def to_json(body: Any) -> str:
    """The JSON text of a JSON-able body, as `json.dumps(body, separators=(",", ":"))` writes it."""
    if _C_ENCODE is None or isinstance(body, str):
        return _JSON.encode(body)
    return "".join(_C_ENCODE(body, 0))


CallNext = Callable[["Request"], "Response"]
Middleware = Callable[["Request", CallNext], "Response"]


class DropConnection(Exception):  # noqa: N818 - it is a signal to the transport, not an error
    """Raised by middleware or a handler: close the socket without writing any answer."""


class HttpError(Exception):
    """Raised by a handler to answer `status` with `body` (the venue's own error shape)."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.response = Response(status, body, dict(headers or {}))


@dataclass
class Response:
    """`body` is JSON-able (serialised by the transport) or bytes/str sent as they are."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self) -> tuple[bytes, str]:
        """The wire bytes and their content type."""
        if isinstance(self.body, bytes):
            return self.body, self.headers.get("Content-Type", "application/octet-stream")
        if isinstance(self.body, str):
            return self.body.encode(), self.headers.get("Content-Type", "text/plain; charset=utf-8")
        return to_json(self.body).encode(), "application/json"


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    venue: str = ""
    # Request weight as the venue counts it (Binance: per endpoint); read by rate-limit middleware.
    weight: int = 1
    tags: dict[str, Any] = field(default_factory=dict)


@dataclass
class Request:
    method: str
    path: str
    # Each query parameter's value (the last one when repeated); `raw_query` keeps the exact bytes
    # for signature checks.
    query: dict[str, str]
    raw_query: str = ""
    body: bytes = b""
    # Header names lower-cased.
    headers: dict[str, str] = field(default_factory=dict)
    client: str = ""
    route: Route | None = None
    # Scratch space for middleware to pass facts down the chain (e.g. the authenticated account).
    context: dict[str, Any] = field(default_factory=dict)
    _params: dict[str, str] | None = field(default=None, init=False, repr=False, compare=False)

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    def form(self) -> dict[str, str]:
        """The body as application/x-www-form-urlencoded (Binance POST), last value per key."""
        return parse_query(self.body.decode("utf-8", "replace"))

    def json(self) -> Any:
        """The body as JSON (Bitget POST); `{}` for an empty body; HttpError 400 when malformed."""
        if not self.body.strip():
            return {}
        try:
            return json.loads(self.body)
        except ValueError:
            raise HttpError(400, {"code": "400", "msg": "malformed JSON body"}) from None

    def params(self) -> dict[str, str]:
        """Query merged with the form body (Binance accepts either for every parameter).

        Computed once per request (authentication and the handler both read it); a new dict each call."""
        if self._params is None:
            merged = dict(self.query)
            ctype = self.header("content-type", "") or ""
            if self.body and "json" not in ctype:
                merged.update(self.form())
            self._params = merged
        return dict(self._params)


class Router:
    """The route table plus the middleware chain; thread-safe to change while the server runs."""

    def __init__(self) -> None:
        self._routes: dict[tuple[str, str], Route] = {}
        self._middleware: list[Middleware] = []
        self._lock = threading.Lock()
        self.not_found: Handler = _default_not_found
        # The middleware chain around the endpoint, built once per change of the middleware list.
        self._chain: CallNext | None = None

    def add(
        self,
        method: str,
        path: str,
        handler: Handler,
        *,
        venue: str = "",
        weight: int = 1,
        replace: bool = False,
        **tags: Any,
    ) -> Route:
        key = (method.upper(), path)
        route = Route(key[0], path, handler, venue, weight, dict(tags))
        with self._lock:
            if key in self._routes and not replace:
                raise ValueError(f"route {key[0]} {path} is already registered (pass replace=True)")
            self._routes[key] = route
        return route

    def get(self, path: str, handler: Handler, **kw: Any) -> Route:
        return self.add("GET", path, handler, **kw)

    def post(self, path: str, handler: Handler, **kw: Any) -> Route:
        return self.add("POST", path, handler, **kw)

    def delete(self, path: str, handler: Handler, **kw: Any) -> Route:
        return self.add("DELETE", path, handler, **kw)

    def use(self, middleware: Middleware) -> Middleware:
        """Append `middleware` (inside those added before). Returns it, so it can be removed later."""
        with self._lock:
            self._middleware.append(middleware)
            self._chain = None
        return middleware

    def remove(self, middleware: Middleware) -> None:
        with self._lock:
            self._middleware.remove(middleware)
            self._chain = None

    def routes(self) -> list[Route]:
        with self._lock:
            return list(self._routes.values())

    def match(self, method: str, path: str) -> Route | None:
        with self._lock:
            return self._routes.get((method.upper(), path))

    def dispatch(self, request: Request) -> Response:
        """Run the middleware chain around the matched handler (or `not_found`)."""
        with self._lock:
            request.route = self._routes.get((request.method.upper(), request.path))
            call = self._chain
            if call is None:
                call = self._chain = self._build_chain(list(self._middleware))
        try:
            return call(request)
        except HttpError as e:
            return e.response

    def _build_chain(self, chain: list[Middleware]) -> CallNext:
        def endpoint(req: Request) -> Response:
            handler = req.route.handler if req.route else self.not_found
            try:
                return handler(req)
            except HttpError as e:
                return e.response

        call: CallNext = endpoint
        for mw in reversed(chain):
            call = _bind(mw, call)
        return call


def parse_query(query: str) -> dict[str, str]:
    """`dict(parse_qsl(query, keep_blank_values=True))` (the last value of a repeated key wins).

    Without `%` or `+` there is nothing to decode, so the pairs are split directly: what ccxt
    sends on every call, parsed in a fraction of parse_qsl's time."""
    if not query:
        return {}
    if "%" in query or "+" in query:
        return dict(parse_qsl(query, keep_blank_values=True))
    out: dict[str, str] = {}
    for pair in query.split("&"):
        if pair:
            name, _, value = pair.partition("=")
            out[name] = value
    return out


def _bind(mw: Middleware, call_next: CallNext) -> CallNext:
    return lambda req: mw(req, call_next)


def _default_not_found(request: Request) -> Response:
    return Response(404, {"code": -1, "msg": f"not served by the emulator: {request.method} {request.path}"})
