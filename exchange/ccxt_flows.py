"""What the ccxt adapter does, written once for the sync and the async client.

Each operation is a generator that yields steps (`Call` a ccxt method, `Sleep`) and receives their
results, or has the mapped error (`core.errors`) thrown into it. `exchange.ccxt_venue` drives the
same generators with a sync ccxt client or with `ccxt.async_support`, so retries, back-off, clock
resync and order idempotency exist in one place only.

Retry rules:
- RetryableExchangeError (network, timeout, 5xx, 429/418, maintenance): retried up to
  `RetryPolicy.attempts` times; the wait is the server's Retry-After when it sent one, else
  exponential back-off with jitter. A wait longer than `max_wait_s` (a 418 ban) is not slept: the
  error goes to the caller with `retry_after_s` set, so the runner can pause instead of hanging.
- A rejected request time (Binance -1021, Bitget 40004/40008) makes the adapter resync its clock
  with the venue (`load_time_difference`) and retry, `clock_resyncs` times, then say so clearly.
- Placing an order is never retried blindly: after any retryable failure the adapter first looks
  the order up by its client order id, and returns it if the lost request did create it. Before
  the first send it looks the id up too, unless the caller vouches the id is new (`fresh`).
"""

from __future__ import annotations

import difflib
import logging
import random
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import ccxt

from core.errors import (
    FatalExchangeError,
    OrderNotFoundError,
    RetryableExchangeError,
)
from core.timeframes import timeframe_ms
from exchange import ccxt_parse as parse
from exchange.ccxt_client import venue as connection_quirks
from exchange.port import Market, Order, OrderRequest, prepare_order
from exchange.trade_paging import TRADE_QUERIES, trades_by_id_forward, trades_by_window_backward
from exchange.venues import TradingQuirks

log = logging.getLogger("aiotrade.exchange")


@dataclass(frozen=True)
class Call:
    method: str
    args: tuple[Any, ...]
    action: str
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Sleep:
    seconds: float


Flow = Generator[Call | Sleep, Any, Any]


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4  # tries per request, the first included
    base_delay_s: float = 0.25
    max_delay_s: float = 8.0
    max_wait_s: float = 60.0  # longer server back-offs are handed to the caller
    clock_resyncs: int = 1


def is_clock_error(e: Exception) -> bool:
    return isinstance(e.__cause__, ccxt.InvalidNonce)


class VenueFlows:
    def __init__(
        self,
        quirks: TradingQuirks,
        policy: RetryPolicy,
        fees_pct: tuple[float | None, float | None] = (None, None),
        seed: int | None = None,
    ) -> None:
        self.name = quirks.name
        self.quirks = quirks
        self.policy = policy
        self.fees_pct = fees_pct
        self.markets: dict[str, Market] = {}
        # Reads the server's time for a caller that drives the server's clock (a replay moving the
        # emulator's virtual clock: `CcxtVenue.follow_driven_clock`); None: ask the exchange when it matters.
        self.server_clock: Callable[[], int] | None = None
        self._rng = random.Random(seed)

    # -- building blocks -------------------------------------------------------------------------

    def call(self, method: str, *args: Any, action: str, retry: bool = True, **kwargs: Any) -> Flow:
        """One ccxt call with clock resync and (when `retry`) back-off on retryable errors."""
        attempt, resyncs = 0, 0
        while True:
            try:
                return (yield Call(method, args, action, kwargs))
            except RetryableExchangeError as e:
                if is_clock_error(e):
                    if resyncs >= self.policy.clock_resyncs:
                        raise self._clock_error(e, action) from e
                    resyncs += 1
                    log.warning("%s: request time rejected while %s; resyncing the clock", self.name, action)
                    yield from self.sync_clock()
                    continue
                attempt += 1
                delay = self.backoff(attempt, e) if retry else None
                if delay is None:
                    raise
                log.warning(
                    "%s: %s; retry %d/%d in %.2f s",
                    self.name,
                    e.problem,
                    attempt,
                    self.policy.attempts - 1,
                    delay,
                )
                yield Sleep(delay)

    def backoff(self, attempt: int, e: RetryableExchangeError) -> float | None:
        """Seconds to wait before try `attempt + 1`, or None when the caller should get the error."""
        if attempt >= self.policy.attempts:
            return None
        if e.retry_after_s is not None:
            delay = e.retry_after_s
        else:
            delay = min(self.policy.max_delay_s, self.policy.base_delay_s * 2 ** (attempt - 1))
            delay *= 0.5 + self._rng.random() / 2  # jitter, so many clients do not retry in step
        return delay if delay <= self.policy.max_wait_s else None

    def _clock_error(self, e: RetryableExchangeError, action: str) -> RetryableExchangeError:
        return RetryableExchangeError(
            f"{self.name} rejected the request time while {action}, even after syncing the clock "
            f"with the exchange (clock skew beyond the allowed window): {e.problem}",
            "make sure this computer's clock is synchronised (enable NTP / automatic time) and not jumping",
        )

    def sync_clock(self) -> Flow:
        yield Call("load_time_difference", (), "syncing the clock with the exchange")

    def load_markets(self, reload: bool = False) -> Flow:
        if self.markets and not reload:
            return self.markets
        raw = yield from self.call("load_markets", reload, action="loading markets")
        maker, taker = self.fees_pct
        self.markets = {s: parse.market(m, self.name, maker, taker) for s, m in raw.items() if m.get("spot")}
        yield from self.sync_clock()
        return self.markets

    def market(self, symbol: str) -> Flow:
        markets = yield from self.load_markets()
        if symbol not in markets:
            close = difflib.get_close_matches(symbol, list(markets), n=3)
            hint = f"did you mean {', '.join(close)}? " if close else ""
            raise FatalExchangeError(
                f"{self.name} does not list the spot market {symbol!r}", f"{hint}write pairs like BTC/USDT"
            )
        return markets[symbol]

    # -- market data -----------------------------------------------------------------------------

    def fetch_time_ms(self) -> Flow:
        return int((yield from self.call("fetch_time", action="reading the exchange time")))

    def fetch_last_price(self, symbol: str) -> Flow:
        yield from self.market(symbol)
        ticker = yield from self.call("fetch_ticker", symbol, action=f"reading the {symbol} price")
        last = ticker.get("last") or ticker.get("close")
        if last is None:
            raise RetryableExchangeError(
                f"{self.name} has no last price for {symbol} yet", "wait for the first trade"
            )
        return float(last)

    def fetch_candles(
        self, symbol: str, timeframe: str, since_ms: int | None = None, limit: int | None = None
    ) -> Flow:
        """Closed candles only: the still-open one (close time after the exchange's now) is dropped."""
        return parse.candle_frame((yield from self.fetch_candle_rows(symbol, timeframe, since_ms, limit)))

    def fetch_candle_rows(
        self, symbol: str, timeframe: str, since_ms: int | None = None, limit: int | None = None
    ) -> Flow:
        """`fetch_candles` as a float64 (n, 6) array ts, o, h, l, c, v (no DataFrame to build)."""
        yield from self.market(symbol)
        tf_ms = timeframe_ms(timeframe)
        page = connection_quirks(self.name).ohlcv_page_limit
        # Without `since` the newest page ends with the open candle: ask for one more.
        want = (limit or page - 1) + (1 if since_ms is None else 0)
        rows: list[list[Any]] = []
        cursor = since_ms
        while len(rows) < want:
            n = min(page, want - len(rows))
            got = yield from self.call(
                "fetch_ohlcv", symbol, timeframe, cursor, n, action=f"fetching {symbol} {timeframe} candles"
            )
            rows.extend(got)
            if since_ms is None or len(got) < n or not got:
                break
            cursor = int(got[-1][0]) + tf_ms
        arr = parse.candle_rows(rows)
        # Which candle is still open is the exchange's clock's call: asked, unless the caller drives
        # that clock and lets us read it (`server_clock`, a replay's virtual clock).
        now = self.server_clock() if self.server_clock is not None else (yield from self.fetch_time_ms())
        arr = arr[arr[:, 0] + tf_ms <= now]
        return arr[-limit:] if limit and since_ms is None else arr

    # -- account ---------------------------------------------------------------------------------

    def fetch_balance(self) -> Flow:
        return parse.balances((yield from self.call("fetch_balance", action="fetching the balance")))

    def fetch_open_orders(self, symbol: str) -> Flow:
        yield from self.market(symbol)
        raw = yield from self.call("fetch_open_orders", symbol, action=f"fetching open {symbol} orders")
        return [parse.order(o) for o in raw]

    def fetch_trades(self, symbol: str, since_ms: int | None = None, limit: int | None = None) -> Flow:
        """Without `since_ms`: the venue's most recent trades (one request, up to `limit`).

        With `since_ms`: the oldest `limit` trades (all of them when None) with `ts_ms >= since_ms`, up
        to the exchange's now, complete. One `since` query is not enough for that: Binance answers at
        most 24 h and 1000 trades per request, Bitget 100 fills newest first (see `exchange.trade_paging`), so
        the range is walked in windows the venue accepts and each window paged by trade id."""
        yield from self.market(symbol)
        if since_ms is None:
            raw = yield from self._my_trades(symbol, None, limit, {})
            return sorted((parse.trade(t) for t in raw), key=lambda t: (t.ts_ms, t.id))
        now = self.server_clock() if self.server_clock is not None else (yield from self.fetch_time_ms())
        rules = TRADE_QUERIES.get(self.name, TRADE_QUERIES["binance"])
        want = limit if limit is not None else 2**62
        walk = trades_by_id_forward if rules.forward else trades_by_window_backward

        def query(start_ms: int | None, page: int, params: dict[str, Any]) -> Flow:
            return (yield from self._my_trades(symbol, start_ms, page, params))

        found = yield from walk(query, rules, max(0, since_ms), now, want)
        trades = sorted((parse.trade(t) for t in found.values()), key=lambda t: (t.ts_ms, t.id))
        return [t for t in trades if since_ms <= t.ts_ms <= now][:want]

    def _my_trades(self, symbol: str, since_ms: int | None, limit: int | None, params: dict[str, Any]) -> Flow:
        return (
            yield from self.call(
                "fetch_my_trades", symbol, since_ms, limit, params, action=f"fetching {symbol} trades"
            )
        )

    def fetch_order(
        self, symbol: str, order_id: str | None = None, client_order_id: str | None = None
    ) -> Flow:
        if not order_id and not client_order_id:
            raise ValueError("fetch_order needs order_id or client_order_id")
        yield from self.market(symbol)
        params = {} if order_id else {"clientOrderId": client_order_id}
        raw = yield from self.call(
            "fetch_order",
            order_id or "",
            symbol,
            params,
            action=f"looking up {symbol} order {order_id or client_order_id}",
        )
        return parse.order(raw, client_order_id)

    def find_by_client_id(self, symbol: str, client_order_id: str) -> Flow:
        try:
            return (yield from self.fetch_order(symbol, client_order_id=client_order_id))
        except OrderNotFoundError:
            return None

    def create_order(self, req: OrderRequest, fresh: bool = False) -> Flow:
        """`fresh`: the caller knows no order with this client id exists (see `exchange.port`), so
        the lookup before the send is skipped; retries after a failure still look it up."""
        market = yield from self.market(req.symbol)
        ref = req.price
        if req.type == "market" and ref is None:
            ref = yield from self.fetch_last_price(req.symbol)
        req = prepare_order(req, market, self.name, ref)
        existing = None if fresh else (yield from self.find_by_client_id(req.symbol, req.client_order_id))
        if existing is not None:
            log.info(
                "%s: order %s already exists (%s); not sending it again",
                self.name,
                req.client_order_id,
                existing.status,
            )
            return existing
        raw = yield from self._send_create(req, ref)
        if isinstance(raw, Order):
            return raw
        placed = parse.order(raw, req.client_order_id)
        if self.quirks.create_returns_order:
            return placed
        return (
            yield from self.fetch_order(req.symbol, order_id=placed.id, client_order_id=req.client_order_id)
        )

    def _send_create(self, req: OrderRequest, ref: float | None) -> Flow:
        """The create call; after a failure that may have landed, the order found by client id."""
        params: dict[str, Any] = {"clientOrderId": req.client_order_id}
        amount = req.amount
        if req.type == "market" and req.side == "buy" and self.quirks.market_buy_in_quote:
            params["cost"] = amount * (ref or 0.0)
        price = req.price if req.type == "limit" else None
        action = f"placing {req.type} {req.side} {amount} {req.symbol} (client id {req.client_order_id})"
        attempt = 0
        while True:
            try:
                return (
                    yield from self.call(
                        "create_order",
                        req.symbol,
                        req.type,
                        req.side,
                        amount,
                        price,
                        params,
                        action=action,
                        retry=False,
                    )
                )
            except RetryableExchangeError as e:
                attempt += 1
                delay = self.backoff(attempt, e)
                if delay is None:
                    raise
                log.warning("%s: %s; checking whether the order landed, then retrying", self.name, e.problem)
                yield Sleep(delay)
                found = yield from self.find_by_client_id(req.symbol, req.client_order_id)
                if found is not None:
                    return found
            except FatalExchangeError as e:  # ccxt calls a duplicate InvalidOrder (Binance) or BadRequest
                if not any(m in str(e) for m in self.quirks.duplicate_client_id_markers):
                    raise
                found = yield from self.find_by_client_id(req.symbol, req.client_order_id)
                if found is None:
                    raise
                return found

    def cancel_order(
        self, symbol: str, order_id: str | None = None, client_order_id: str | None = None
    ) -> Flow:
        if not order_id and not client_order_id:
            raise ValueError("cancel_order needs order_id or client_order_id")
        yield from self.market(symbol)
        params = {} if order_id else {"clientOrderId": client_order_id}
        try:
            raw = yield from self.call(
                "cancel_order",
                order_id or "",
                symbol,
                params,
                action=f"cancelling {symbol} order {order_id or client_order_id}",
            )
        except OrderNotFoundError:
            # Filled or cancelled meanwhile (or a retried cancel whose first answer was lost).
            order = yield from self.fetch_order(symbol, order_id, client_order_id)
            if order.is_open:
                raise
            return order
        if self.quirks.cancel_returns_order:
            return parse.order(raw, client_order_id)
        return (yield from self.fetch_order(symbol, str(raw.get("id") or order_id or ""), client_order_id))
