"""Request-weight rate limiting for the emulator, answered as the venues answer it.

Binance counts request weight per IP per minute (the route's `weight`). Past the limit it answers
429 with `Retry-After` (seconds to the next window) and code -1003; a client that keeps sending
while limited (more than `ban_after` refused requests in one window) is banned for `ban_s`: 418
with `Retry-After` and "IP banned until <ms>". Every Binance answer carries `X-MBX-USED-WEIGHT-1M`.
Bitget answers 429 {"code":"429","msg":"Too Many Requests"} (it has no 418; a ban answers 429 too).

The window is wall time (rate limits concern how fast a client really sends), injectable for tests.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from exchange.emulator.router import CallNext, Request, Response


@dataclass
class _Client:
    window_start: float = -1.0
    used: int = 0
    refused: int = 0
    banned_until: float = 0.0


class RateLimiter:
    def __init__(
        self,
        weight_per_window: int = 6000,
        window_s: float = 60.0,
        ban_after: int = 5,
        ban_s: float = 120.0,
        time_fn: Callable[[], float] = time.monotonic,
        key: Callable[[Request], str] | None = None,
    ) -> None:
        self.limit = weight_per_window
        self.window_s = window_s
        self.ban_after = ban_after
        self.ban_s = ban_s
        self._time = time_fn
        self._key = key or (lambda req: req.client or "local")
        self._clients: dict[str, _Client] = {}
        self._lock = threading.Lock()
        self.refused: list[tuple[int, str, str]] = []  # (status, method, path)

    def __call__(self, req: Request, call_next: CallNext) -> Response:
        weight = req.route.weight if req.route else 1
        venue = _venue(req)
        with self._lock:
            now = self._time()
            c = self._clients.setdefault(self._key(req), _Client())
            start = math.floor(now / self.window_s) * self.window_s
            if c.window_start != start:
                c.window_start, c.used, c.refused = start, 0, 0
            if c.banned_until > now:
                answer = self._refuse(req, venue, 418, c.banned_until - now, c)
            elif c.used + weight > self.limit:
                c.refused += 1
                if c.refused > self.ban_after:
                    c.banned_until = now + self.ban_s
                    answer = self._refuse(req, venue, 418, self.ban_s, c)
                else:
                    answer = self._refuse(req, venue, 429, start + self.window_s - now, c)
            else:
                c.used += weight
                answer = None
            used = c.used
        if answer is not None:
            return answer
        resp = call_next(req)
        if venue == "binance":
            resp.headers["X-MBX-USED-WEIGHT-1M"] = str(used)
        return resp

    def _refuse(self, req: Request, venue: str, status: int, wait_s: float, c: _Client) -> Response:
        retry_after = str(max(1, math.ceil(wait_s)))
        self.refused.append((status, req.method, req.path))
        ip = req.client or "127.0.0.1"
        if venue == "bitget":
            body = {
                "code": "429",
                "msg": "Too Many Requests",
                "requestTime": int(time.time() * 1000),
                "data": None,
            }
            return Response(429, body, {"Retry-After": retry_after})
        if status == 418:
            until_ms = int(time.time() * 1000 + wait_s * 1000)
            msg = f"Way too many requests; IP({ip}) banned until {until_ms}. Please use WebSocket Streams for live updates to avoid bans."
        else:
            msg = (
                f"Too many requests; current limit of IP({ip}) request weight per {self.window_s:g} SECONDS is "
                f"{self.limit}. Please use WebSocket Streams for live updates to avoid bans."
            )
        headers = {"Retry-After": retry_after, "X-MBX-USED-WEIGHT-1M": str(c.used)}
        return Response(status, {"code": -1003, "msg": msg}, headers)


def _venue(req: Request) -> str:
    if req.route is not None and req.route.venue:
        return req.route.venue
    return "bitget" if req.path.startswith("/api/v2") else "binance"
