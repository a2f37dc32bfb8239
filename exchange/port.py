"""The venue port: what the live runner needs from an exchange, in our own types.

Two implementations: `exchange.ccxt_venue.CcxtVenue` (Binance and Bitget through ccxt, sync; and
`AsyncCcxtVenue` with the same methods as coroutines) and `exchange.paper.PaperVenue` (fills
simulated locally against any market data). The runner never branches on which one it holds.

Rules every implementation keeps:
- Orders carry a client order id derived from the runner's persisted intent (`client_order_id`).
  `create_order` is idempotent on it: when an order with that id exists, it is returned and no
  second order is placed (a retry after a lost answer, or a restart, is safe). A caller that knows
  no order with the id can exist (an intent persisted just now and never sent, the state settled
  with the venue first) passes `fresh=True`: the lookup before the send is skipped; a send that
  failed in a way that may have landed is still looked up before it is retried.
- Prices and amounts are rounded with the market's rules (`prepare_order`) and checked against
  its minimum quantity and notional before anything is sent.
- `cancel_order` returns the order's final state; cancelling an order that already filled or was
  cancelled returns it as it is, and only an order the venue never knew raises OrderNotFoundError.
- Errors are `core.errors`: RetryableExchangeError (already retried with back-off by the adapter
  when it reaches the caller) or the Fatal* family, each with a message saying what to do.
- `fetch_candles` returns closed candles only, in the shared candle contract.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from typing import Literal, Protocol

import pandas as pd

from core.errors import InvalidOrderError
from core.market_rules import MarketRules

Side = Literal["buy", "sell"]
OrderType = Literal["limit", "market"]
OPEN, CLOSED, CANCELED, REJECTED, EXPIRED = "open", "closed", "canceled", "rejected", "expired"

# Both venues accept [A-Za-z0-9_] up to 32 characters (Binance allows more, Bitget does not).
CLIENT_ORDER_ID_RE = re.compile(r"^[A-Za-z0-9_]{1,32}$")


def client_order_id(intent_key: str, prefix: str = "aio") -> str:
    """The client order id of a persisted order intent: deterministic, so a retry or a restart
    sends the same id, and valid on every venue (prefix + 28 hex digits of a hash of the key)."""
    if not re.fullmatch(r"[A-Za-z0-9]{1,4}", prefix):
        raise ValueError(f"client order id prefix {prefix!r} must be 1-4 letters or digits")
    digest = hashlib.blake2b(intent_key.encode("utf-8"), digest_size=14).hexdigest()
    return prefix + digest


@dataclass(frozen=True)
class Market:
    symbol: str  # unified, "BTC/USDT"
    id: str  # the venue's, "BTCUSDT"
    base: str
    quote: str
    rules: MarketRules  # rules.symbol is the unified symbol
    active: bool = True


@dataclass(frozen=True)
class Balance:
    asset: str
    free: float
    locked: float

    @property
    def total(self) -> float:
        return self.free + self.locked


@dataclass(frozen=True)
class OrderRequest:
    symbol: str
    side: Side
    type: OrderType
    amount: float  # base currency
    client_order_id: str
    # Limit price; for a market order an optional reference price (min-notional check, and venues
    # that size market buys in quote currency). Without it the adapter asks for the last price.
    price: float | None = None

    def __post_init__(self) -> None:
        problems = []
        if self.side not in ("buy", "sell"):
            problems.append(f"side {self.side!r} must be 'buy' or 'sell'")
        if self.type not in ("limit", "market"):
            problems.append(f"type {self.type!r} must be 'limit' or 'market'")
        if not self.amount > 0:
            problems.append(f"amount {self.amount} must be > 0")
        if self.type == "limit" and not (self.price is not None and self.price > 0):
            problems.append(f"a limit order needs a price > 0 (got {self.price})")
        if not CLIENT_ORDER_ID_RE.match(self.client_order_id or ""):
            problems.append(
                f"client_order_id {self.client_order_id!r} must be 1-32 of [A-Za-z0-9_] (use port.client_order_id)"
            )
        if problems:
            raise InvalidOrderError(
                f"invalid order request for {self.symbol}: " + "; ".join(problems), "fix the order request"
            )


@dataclass(frozen=True)
class Order:
    id: str
    client_order_id: str | None
    symbol: str
    side: Side
    type: OrderType
    status: str  # open | closed | canceled | rejected | expired
    price: float | None  # limit price (None for market orders)
    amount: float
    filled: float
    average: float | None
    ts_ms: int | None
    fee_cost: float | None = None
    fee_asset: str | None = None

    @property
    def remaining(self) -> float:
        return max(0.0, self.amount - self.filled)

    @property
    def is_open(self) -> bool:
        return self.status == OPEN


@dataclass(frozen=True)
class Trade:
    id: str
    order_id: str
    symbol: str
    side: Side
    price: float
    amount: float
    fee_cost: float
    fee_asset: str | None
    ts_ms: int
    is_maker: bool | None


def prepare_order(
    req: OrderRequest, market: Market, venue: str, ref_price: float | None = None
) -> OrderRequest:
    """`req` rounded to the market's tick and lot, or InvalidOrderError when the exchange would refuse
    it for its size (below minimum quantity or notional). `ref_price` values market orders."""
    rules = market.rules
    amount = rules.round_amount(req.amount)
    price = (
        rules.round_price(req.price, req.side == "buy") if req.type == "limit" and req.price else req.price
    )
    value_price = price if req.type == "limit" else (ref_price or req.price)
    if amount <= 0:
        raise InvalidOrderError(
            f"{venue} {market.symbol}: amount {req.amount} rounds to 0 at lot size {rules.lot_size}",
            f"order at least {rules.min_qty} {market.base}",
        )
    if value_price is not None:
        reason = rules.reject_reason(value_price, amount)
        if reason is not None:
            raise InvalidOrderError(
                f"{venue} {market.symbol}: order {amount} {market.base} at {value_price} refused before sending: "
                f"{reason} (min quantity {rules.min_qty} {market.base}, min notional {rules.min_notional} {market.quote})",
                f"order at least {rules.min_order_quote(value_price):.8g} {market.quote} worth",
            )
    return replace(req, amount=amount, price=price)


class MarketData(Protocol):
    """What the paper venue needs from a data source (CcxtVenue with or without keys)."""

    name: str

    def load_markets(self, reload: bool = False) -> dict[str, Market]: ...
    def fetch_time_ms(self) -> int: ...
    def fetch_candles(
        self, symbol: str, timeframe: str, since_ms: int | None = None, limit: int | None = None
    ) -> pd.DataFrame: ...
    def fetch_last_price(self, symbol: str) -> float: ...


class Venue(MarketData, Protocol):
    def fetch_balance(self) -> dict[str, Balance]: ...
    def fetch_open_orders(self, symbol: str) -> list[Order]: ...
    def create_order(self, req: OrderRequest, *, fresh: bool = False) -> Order: ...
    def cancel_order(
        self, symbol: str, *, order_id: str | None = None, client_order_id: str | None = None
    ) -> Order: ...
    def fetch_order(
        self, symbol: str, *, order_id: str | None = None, client_order_id: str | None = None
    ) -> Order: ...
    def fetch_trades(
        self, symbol: str, since_ms: int | None = None, limit: int | None = None
    ) -> list[Trade]: ...
    def close(self) -> None: ...


class AsyncVenue(Protocol):
    """The same port with coroutines (AsyncCcxtVenue)."""

    name: str

    async def load_markets(self, reload: bool = False) -> dict[str, Market]: ...
    async def fetch_time_ms(self) -> int: ...
    async def fetch_candles(
        self, symbol: str, timeframe: str, since_ms: int | None = None, limit: int | None = None
    ) -> pd.DataFrame: ...
    async def fetch_last_price(self, symbol: str) -> float: ...
    async def fetch_balance(self) -> dict[str, Balance]: ...
    async def fetch_open_orders(self, symbol: str) -> list[Order]: ...
    async def create_order(self, req: OrderRequest, *, fresh: bool = False) -> Order: ...
    async def cancel_order(
        self, symbol: str, *, order_id: str | None = None, client_order_id: str | None = None
    ) -> Order: ...
    async def fetch_order(
        self, symbol: str, *, order_id: str | None = None, client_order_id: str | None = None
    ) -> Order: ...
    async def fetch_trades(
        self, symbol: str, since_ms: int | None = None, limit: int | None = None
    ) -> list[Trade]: ...
    async def close(self) -> None: ...
