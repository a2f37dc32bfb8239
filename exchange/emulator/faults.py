"""Fault injection for the emulator: a middleware switched on per test.

    faults = FaultInjector()
    server.router.use(faults)
    faults.lost_answer("POST", "/api/v3/order")            # order created, answer never arrives
    faults.error(503, path="/api/v3/*", times=2)           # two 5xx answers, then normal again
    faults.latency(0.2)                                    # every request 200 ms slower
    faults.timeout(2.0, "GET", "/api/v3/account")          # hold past the client's timeout, then drop
    faults.drop("DELETE", "/api/v3/order")                 # connection closed before handling

Faults match on method and path (exact, or a prefix ending in "*"), may let the first `skip`
matching requests through, and fire `times` times (None: until cleared). The first matching fault
applies. Partial fills are not a wire fault: set `trading.set_fill_policy(FillPolicy(...))`.
`fired` records (kind, method, path) of every fault applied, for assertions.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from exchange.emulator.router import CallNext, DropConnection, Request, Response

LATENCY, DROP, ERROR, TIMEOUT, LOST_ANSWER = "latency", "drop", "error", "timeout", "lost_answer"
KINDS = (LATENCY, DROP, ERROR, TIMEOUT, LOST_ANSWER)
# What a load balancer in front of an exchange answers when the backend is down.
DEFAULT_5XX_BODY = "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>"


@dataclass
class Fault:
    kind: str
    method: str | None = None
    path: str | None = None
    times: int | None = 1
    skip: int = 0
    delay_s: float = 0.0
    status: int = 503
    body: Any = None
    headers: dict[str, str] | None = None
    seen: int = 0
    fired: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {', '.join(KINDS)}")

    def matches(self, req: Request) -> bool:
        if self.method and req.method != self.method.upper():
            return False
        if self.path is None:
            return True
        if self.path.endswith("*"):
            return req.path.startswith(self.path[:-1])
        return req.path == self.path

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.fired >= self.times


class FaultInjector:
    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.fired: list[tuple[str, str, str]] = []

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def latency(
        self, delay_s: float, method: str | None = None, path: str | None = None, times: int | None = None
    ) -> Fault:
        return self.add(Fault(LATENCY, method, path, times, delay_s=delay_s))

    def drop(
        self, method: str | None = None, path: str | None = None, times: int | None = 1, skip: int = 0
    ) -> Fault:
        return self.add(Fault(DROP, method, path, times, skip))

    def error(
        self,
        status: int = 503,
        method: str | None = None,
        path: str | None = None,
        times: int | None = 1,
        body: Any = None,
        headers: dict[str, str] | None = None,
        skip: int = 0,
    ) -> Fault:
        return self.add(Fault(ERROR, method, path, times, skip, status=status, body=body, headers=headers))

    def timeout(
        self, delay_s: float, method: str | None = None, path: str | None = None, times: int | None = 1
    ) -> Fault:
        return self.add(Fault(TIMEOUT, method, path, times, delay_s=delay_s))

    def lost_answer(
        self, method: str | None = None, path: str | None = None, times: int | None = 1, skip: int = 0
    ) -> Fault:
        return self.add(Fault(LOST_ANSWER, method, path, times, skip))

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def close(self) -> None:
        """Wake every request held by a latency/timeout fault (server shutdown)."""
        self._stop.set()

    def _take(self, req: Request) -> Fault | None:
        with self._lock:
            for f in self._faults:
                if f.exhausted or not f.matches(req):
                    continue
                f.seen += 1
                if f.seen <= f.skip:
                    continue
                f.fired += 1
                self.fired.append((f.kind, req.method, req.path))
                return f
        return None

    def __call__(self, req: Request, call_next: CallNext) -> Response:
        fault = self._take(req)
        if fault is None:
            return call_next(req)
        if fault.kind == LATENCY:
            self._stop.wait(fault.delay_s)
            return call_next(req)
        if fault.kind == DROP:
            raise DropConnection()
        if fault.kind == ERROR:
            body = DEFAULT_5XX_BODY if fault.body is None else fault.body
            headers = dict(fault.headers or {})
            if isinstance(body, str):
                headers.setdefault("Content-Type", "text/html")
            return Response(fault.status, body, headers)
        if fault.kind == TIMEOUT:
            self._stop.wait(fault.delay_s)
            raise DropConnection()
        call_next(req)  # LOST_ANSWER: the server acts, the client never hears back
        raise DropConnection()
