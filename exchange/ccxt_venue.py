"""The venue port over ccxt, for Binance and Bitget spot: `CcxtVenue` (sync) and `AsyncCcxtVenue`.

    venue = CcxtVenue.connect("binance", credentials=load_credentials("binance"))
    venue = CcxtVenue.connect("bitget", credentials=creds, base_url=emulator.url, rate_limit=False)
    order = venue.create_order(OrderRequest("BTC/USDT", "buy", "limit", 0.001, client_order_id(intent), 50_000))

Both drive the generators of `exchange.ccxt_flows` (retries, clock resync, idempotent orders), so
they behave identically. ccxt errors become `core.errors` at this edge (`ccxt_client.map_error`).
Credentials never reach a log line: ccxt logs request headers (API key, passphrase) at DEBUG, so
each client gets a logger that masks this venue's key, secret and passphrase.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import ccxt
import numpy as np
import pandas as pd

from core.errors import AuthenticationError, ExchangeError, FatalExchangeError
from core.secrets import Credentials
from exchange.ccxt_client import make_exchange, map_error
from exchange.ccxt_flows import Call, Flow, RetryPolicy, Sleep, VenueFlows
from exchange.port import Balance, Market, Order, OrderRequest, Trade
from exchange.venues import TradingQuirks, quirks

CCXT_LOGGER = "ccxt.base.exchange"


class RedactingLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """ccxt's logger with this client's secrets masked in every message."""

    def __init__(self, logger: logging.Logger, secrets: list[str]) -> None:
        super().__init__(logger, {})
        # Longest first, so a secret containing another is masked whole.
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if not self.isEnabledFor(level):
            return
        text = str(msg) % args if args else str(msg)
        for s in self._secrets:
            text = text.replace(s, "****")
        kwargs.setdefault("stacklevel", 3)
        self.logger.log(level, "%s", text, **kwargs)


def _ccxt_config(credentials: Credentials | None) -> dict[str, str] | None:
    if credentials is None:
        return None
    creds = {"apiKey": credentials.key, "secret": credentials.secret}
    if credentials.passphrase:
        creds["password"] = credentials.passphrase
    return creds


def _client(name: str, credentials: Credentials | None, asynchronous: bool, **kw: Any) -> Any:
    ex = make_exchange(name, credentials=_ccxt_config(credentials), asynchronous=asynchronous, **kw)
    secrets = [credentials.key, credentials.secret, credentials.passphrase or ""] if credentials else []
    ex.logger = RedactingLogger(logging.getLogger(CCXT_LOGGER), secrets)
    return ex


class _Base:
    def __init__(self, client: Any, venue_quirks: TradingQuirks, flows: VenueFlows) -> None:
        self.client = client
        self.name = venue_quirks.name
        self.quirks = venue_quirks
        self.flows = flows

    def _translate(self, e: Exception, step: Call) -> ExchangeError:
        if isinstance(e, ccxt.BaseError):
            mapped = map_error(e, self.name, step.action, self.client)
        else:  # ccxt choked on an answer it could not parse
            mapped = FatalExchangeError(
                f"{self.name}: unexpected answer while {step.action} ({type(e).__name__}: {e})",
                "retrying will not help; report it with the log",
            )
        if isinstance(mapped, AuthenticationError):
            mapped = AuthenticationError(mapped.problem, self.quirks.auth_fix)
        mapped.__cause__ = e
        return mapped

    @property
    def markets(self) -> dict[str, Market]:
        return self.flows.markets



class CcxtVenue(_Base):
    """The port over a sync ccxt client."""

    def __init__(
        self,
        client: Any,
        venue_quirks: TradingQuirks,
        flows: VenueFlows,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(client, venue_quirks, flows)
        self._sleep = sleep

    @classmethod
    def connect(
        cls,
        name: str,
        *,
        credentials: Credentials | None = None,
        base_url: str | None = None,
        timeout_s: float = 10.0,
        rate_limit: bool = True,
        retry: RetryPolicy | None = None,
        fees_pct: tuple[float | None, float | None] = (None, None),
        sleep: Callable[[float], None] = time.sleep,
        options: dict[str, Any] | None = None,
    ) -> CcxtVenue:
        q = quirks(name)
        client = _client(
            name,
            credentials,
            False,
            base_url=base_url,
            timeout_s=timeout_s,
            rate_limit=rate_limit,
            options=options,
        )
        return cls(client, q, VenueFlows(q, retry or RetryPolicy(), fees_pct), sleep)

    def follow_driven_clock(self, server_ms: Callable[[], int]) -> None:
        """The caller drives the server's clock (a replay moving the emulator's virtual clock) and
        `server_ms()` reads it. Before every request the client's offset is aligned with it, so signed
        timestamps are the server's time (`sync_clock` without its request): the virtual clock stands
        still within a bar while wall time goes on, and an offset set once would drift by however long
        the bar takes (a first bar compiling kernels: seconds), more than the 1 s ahead the exchange
        accepts. The flows read it as the server's "now" (which candle is still open) without asking.
        Never for a real exchange, whose clock nobody drives."""
        self.flows.server_clock = server_ms

    def _run(self, flow: Flow) -> Any:
        value: Any = None
        error: Exception | None = None
        while True:
            try:
                step = flow.throw(error) if error is not None else flow.send(value)
            except StopIteration as stop:
                return stop.value
            value, error = None, None
            if isinstance(step, Sleep):
                self._sleep(step.seconds)
                continue
            if self.flows.server_clock is not None:
                self.client.options["timeDifference"] = int(self.client.milliseconds()) - self.flows.server_clock()
            try:
                value = getattr(self.client, step.method)(*step.args, **step.kwargs)
            except Exception as e:  # noqa: BLE001 - every client failure is translated at this edge
                error = self._translate(e, step)

    def load_markets(self, reload: bool = False) -> dict[str, Market]:
        return self._run(self.flows.load_markets(reload))

    def sync_clock(self) -> None:
        self._run(self.flows.sync_clock())

    def fetch_time_ms(self) -> int:
        return self._run(self.flows.fetch_time_ms())

    def fetch_last_price(self, symbol: str) -> float:
        return self._run(self.flows.fetch_last_price(symbol))

    def fetch_candles(
        self, symbol: str, timeframe: str, since_ms: int | None = None, limit: int | None = None
    ) -> pd.DataFrame:
        return self._run(self.flows.fetch_candles(symbol, timeframe, since_ms, limit))

    def fetch_candle_rows(
        self, symbol: str, timeframe: str, since_ms: int | None = None, limit: int | None = None
    ) -> np.ndarray:
        """`fetch_candles` as a float64 (n, 6) array ts, o, h, l, c, v: no DataFrame per call."""
        return self._run(self.flows.fetch_candle_rows(symbol, timeframe, since_ms, limit))

    def fetch_balance(self) -> dict[str, Balance]:
        return self._run(self.flows.fetch_balance())

    def fetch_open_orders(self, symbol: str) -> list[Order]:
        return self._run(self.flows.fetch_open_orders(symbol))

    def create_order(self, req: OrderRequest, *, fresh: bool = False) -> Order:
        return self._run(self.flows.create_order(req, fresh))

    def cancel_order(
        self, symbol: str, *, order_id: str | None = None, client_order_id: str | None = None
    ) -> Order:
        return self._run(self.flows.cancel_order(symbol, order_id, client_order_id))

    def fetch_order(
        self, symbol: str, *, order_id: str | None = None, client_order_id: str | None = None
    ) -> Order:
        return self._run(self.flows.fetch_order(symbol, order_id, client_order_id))

    def fetch_trades(self, symbol: str, since_ms: int | None = None, limit: int | None = None) -> list[Trade]:
        return self._run(self.flows.fetch_trades(symbol, since_ms, limit))

    def close(self) -> None:
        session = getattr(self.client, "session", None)
        if session is not None:
            session.close()


class AsyncCcxtVenue(_Base):
    """The port over `ccxt.async_support`: the same methods as coroutines; `await venue.close()`."""

    def __init__(
        self,
        client: Any,
        venue_quirks: TradingQuirks,
        flows: VenueFlows,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__(client, venue_quirks, flows)
        self._sleep = sleep

    @classmethod
    def connect(
        cls,
        name: str,
        *,
        credentials: Credentials | None = None,
        base_url: str | None = None,
        timeout_s: float = 10.0,
        rate_limit: bool = True,
        retry: RetryPolicy | None = None,
        fees_pct: tuple[float | None, float | None] = (None, None),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        options: dict[str, Any] | None = None,
    ) -> AsyncCcxtVenue:
        q = quirks(name)
        client = _client(
            name,
            credentials,
            True,
            base_url=base_url,
            timeout_s=timeout_s,
            rate_limit=rate_limit,
            options=options,
        )
        return cls(client, q, VenueFlows(q, retry or RetryPolicy(), fees_pct), sleep)

    async def _run(self, flow: Flow) -> Any:
        value: Any = None
        error: Exception | None = None
        while True:
            try:
                step = flow.throw(error) if error is not None else flow.send(value)
            except StopIteration as stop:
                return stop.value
            value, error = None, None
            if isinstance(step, Sleep):
                await self._sleep(step.seconds)
                continue
            try:
                value = await getattr(self.client, step.method)(*step.args, **step.kwargs)
            except Exception as e:  # noqa: BLE001 - every client failure is translated at this edge
                error = self._translate(e, step)

    async def load_markets(self, reload: bool = False) -> dict[str, Market]:
        return await self._run(self.flows.load_markets(reload))

    async def sync_clock(self) -> None:
        await self._run(self.flows.sync_clock())

    async def fetch_time_ms(self) -> int:
        return await self._run(self.flows.fetch_time_ms())

    async def fetch_last_price(self, symbol: str) -> float:
        return await self._run(self.flows.fetch_last_price(symbol))

    async def fetch_candles(
        self, symbol: str, timeframe: str, since_ms: int | None = None, limit: int | None = None
    ) -> pd.DataFrame:
        return await self._run(self.flows.fetch_candles(symbol, timeframe, since_ms, limit))

    async def fetch_candle_rows(
        self, symbol: str, timeframe: str, since_ms: int | None = None, limit: int | None = None
    ) -> np.ndarray:
        return await self._run(self.flows.fetch_candle_rows(symbol, timeframe, since_ms, limit))

    async def fetch_balance(self) -> dict[str, Balance]:
        return await self._run(self.flows.fetch_balance())

    async def fetch_open_orders(self, symbol: str) -> list[Order]:
        return await self._run(self.flows.fetch_open_orders(symbol))

    async def create_order(self, req: OrderRequest, *, fresh: bool = False) -> Order:
        return await self._run(self.flows.create_order(req, fresh))

    async def cancel_order(
        self, symbol: str, *, order_id: str | None = None, client_order_id: str | None = None
    ) -> Order:
        return await self._run(self.flows.cancel_order(symbol, order_id, client_order_id))

    async def fetch_order(
        self, symbol: str, *, order_id: str | None = None, client_order_id: str | None = None
    ) -> Order:
        return await self._run(self.flows.fetch_order(symbol, order_id, client_order_id))

    async def fetch_trades(
        self, symbol: str, since_ms: int | None = None, limit: int | None = None
    ) -> list[Trade]:
        return await self._run(self.flows.fetch_trades(symbol, since_ms, limit))

    async def close(self) -> None:
        await self.client.close()
