"""The paper venue: the venue port with fills simulated locally, never touching a real account.

Market data (markets, candles, prices, time) comes from any `MarketData`: a `CcxtVenue` without
keys on the real exchange, or pointed at the emulator. Orders are matched by the emulator's
matching engine, i.e. by the same fill model as the backtester (`strategies.fill_model`), on the
closed candles of `timeframe`: an order placed at time T is eligible from the first candle opening
at or after T, limit orders fill at their price with the maker fee, market orders at the last price
with the taker fee, buys pay the fee in base and sells in quote.

The account (balances, orders, fills, matching cursor) lives in a SQLite file and is saved after
every change: a restarted paper session continues where it stopped, and orders that rested while
it was down are matched on the candles that closed meanwhile at the next call.

    paper = PaperVenue(CcxtVenue.connect("binance"), "user_data/paper-binance.db", balances={"USDT": 1000})
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import cast

import numpy as np
import pandas as pd

from core.errors import InsufficientFundsError, InvalidOrderError, OrderNotFoundError
from core.timeframes import timeframe_ms
from exchange.emulator.accounts import CANCELED, FILLED, Account, AccountSpec, SimOrder
from exchange.emulator.matching import BALANCE, DUPLICATE, FillPolicy, MatchingEngine, Reject
from exchange.paper_store import PaperStore
from exchange.port import CANCELED as PORT_CANCELED
from exchange.port import (
    CLOSED,
    OPEN,
    Balance,
    Market,
    MarketData,
    Order,
    OrderRequest,
    OrderType,
    Side,
    Trade,
    prepare_order,
)

_STATUS = {FILLED: CLOSED, CANCELED: PORT_CANCELED}
_PAGE = 1000


class _DataBars:
    """The matching engine's bars, fetched from the market-data source."""

    def __init__(self, data: MarketData, timeframe: str) -> None:
        self.data = data
        self.timeframe = timeframe
        self.tf_ms = timeframe_ms(timeframe)

    def bar_ms(self, symbol_id: str) -> int | None:
        return self.tf_ms

    def closed_bars(self, symbol_id: str, start_ms: int, now_ms: int) -> np.ndarray:
        frames = []
        while start_ms + self.tf_ms <= now_ms:
            df = self.data.fetch_candles(symbol_id, self.timeframe, since_ms=start_ms, limit=_PAGE)
            df = df[df["ts"] + self.tf_ms <= now_ms]
            if df.empty:
                break
            frames.append(df)
            start_ms = int(df["ts"].iloc[-1]) + self.tf_ms
            if len(df) < _PAGE:
                break
        if not frames:
            return np.empty((0, 6))
        return pd.concat(frames)[["ts", "open", "high", "low", "close", "volume"]].to_numpy(float)

    def last_price(self, symbol_id: str, now_ms: int) -> float | None:
        return self.data.fetch_last_price(symbol_id)


class PaperVenue:
    def __init__(
        self,
        data: MarketData,
        state_path: str | Path,
        *,
        balances: dict[str, float] | None = None,
        timeframe: str = "1m",
        fill_policy: FillPolicy | None = None,
    ) -> None:
        self.data = data
        self.name = f"paper-{data.name}"
        self._lock = threading.RLock()
        self.account = Account(AccountSpec("paper", key="", secret="", balances=dict(balances or {})))
        self.engine = MatchingEngine(_DataBars(data, timeframe), fill_policy)
        self._store = PaperStore(state_path)
        # A saved session wins over `balances`: they only seed a new paper account.
        if not self._store.load(self.account, self.engine, self.name):
            self._store.save(self.account, self.engine, self.name)

    # -- market data: straight from the source ---------------------------------------------------

    def load_markets(self, reload: bool = False) -> dict[str, Market]:
        return self.data.load_markets(reload)

    def fetch_time_ms(self) -> int:
        return self.data.fetch_time_ms()

    def fetch_candles(
        self, symbol: str, timeframe: str, since_ms: int | None = None, limit: int | None = None
    ) -> pd.DataFrame:
        return self.data.fetch_candles(symbol, timeframe, since_ms, limit)

    def fetch_last_price(self, symbol: str) -> float:
        return self.data.fetch_last_price(symbol)

    # -- the simulated account -------------------------------------------------------------------

    def _market(self, symbol: str) -> Market:
        markets = self.data.load_markets()
        if symbol not in markets:
            raise InvalidOrderError(
                f"{self.name}: unknown market {symbol!r}", f"markets: {', '.join(sorted(markets)[:20])}"
            )
        return markets[symbol]

    def _sync(self) -> int:
        """Match resting orders on every candle closed by the venue's now; persist; return now."""
        now = self.data.fetch_time_ms()
        if self.account.open_orders():
            cursor = dict(self.engine.cursor_ms)
            self.engine.match([self.account], self.data.load_markets(), now)
            if self.account.changed_orders or cursor != self.engine.cursor_ms:
                self._store.save(self.account, self.engine, self.name)
        return now

    def fetch_balance(self) -> dict[str, Balance]:
        with self._lock:
            self._sync()
            return {
                a: Balance(a, b.free, b.locked) for a, b in sorted(self.account.balances.items()) if b.total
            }

    def fetch_open_orders(self, symbol: str) -> list[Order]:
        with self._lock:
            self._sync()
            return [
                self._order(o) for o in sorted(self.account.open_orders(symbol), key=lambda o: o.order_id)
            ]

    def create_order(self, req: OrderRequest, *, fresh: bool = False) -> Order:
        market = self._market(req.symbol)
        ref = req.price if req.type == "limit" else (req.price or self.data.fetch_last_price(req.symbol))
        req = prepare_order(req, market, self.name, ref)
        with self._lock:
            now = self._sync()
            existing = self.account.order_by_client_id(req.client_order_id)
            if existing is not None:
                return self._order(existing)
            price = req.price if req.type == "limit" else None
            try:
                order = self.engine.place(
                    self.account, market, req.side, req.type, req.amount, price, req.client_order_id, now
                )
            except Reject as r:
                raise self._reject(r, req, market) from None
            self._store.save(self.account, self.engine, self.name)
            return self._order(order)

    def cancel_order(
        self, symbol: str, *, order_id: str | None = None, client_order_id: str | None = None
    ) -> Order:
        with self._lock:
            now = self._sync()
            order = self._find(symbol, order_id, client_order_id)
            if order.is_open:
                self.engine.cancel(self.account, self._market(symbol), order, now)
                self._store.save(self.account, self.engine, self.name)
            return self._order(order)

    def fetch_order(
        self, symbol: str, *, order_id: str | None = None, client_order_id: str | None = None
    ) -> Order:
        with self._lock:
            self._sync()
            return self._order(self._find(symbol, order_id, client_order_id))

    def fetch_trades(self, symbol: str, since_ms: int | None = None, limit: int | None = None) -> list[Trade]:
        with self._lock:
            self._sync()
            trades = [
                t
                for t in self.account.trades
                if t.symbol_id == symbol and (since_ms is None or t.ts_ms >= since_ms)
            ]
            trades = trades[:limit] if limit else trades
            return [
                Trade(
                    str(t.trade_id),
                    str(t.order_id),
                    t.symbol_id,
                    cast(Side, t.side),
                    t.price,
                    t.qty,
                    t.fee,
                    t.fee_asset,
                    t.ts_ms,
                    t.is_maker,
                )
                for t in trades
            ]

    def close(self) -> None:
        self._store.close()

    # -- helpers ---------------------------------------------------------------------------------

    def _find(self, symbol: str, order_id: str | None, client_order_id: str | None) -> SimOrder:
        if not order_id and not client_order_id:
            raise ValueError("need order_id or client_order_id")
        order = None
        if order_id:
            order = self.account.orders.get(int(order_id)) if order_id.isdigit() else None
        elif client_order_id:
            order = self.account.order_by_client_id(client_order_id)
        if order is None or order.symbol_id != symbol:
            raise OrderNotFoundError(
                f"{self.name} does not know {symbol} order {order_id or client_order_id}",
                "the order was never placed on this paper account; reconcile open orders",
            )
        return order

    def _order(self, o: SimOrder) -> Order:
        return Order(
            id=str(o.order_id),
            client_order_id=o.client_order_id,
            symbol=o.symbol_id,
            side=cast(Side, o.side),
            type=cast(OrderType, o.type),
            status=_STATUS.get(o.status, OPEN),
            price=o.price if o.type == "limit" else None,
            amount=o.orig_qty,
            filled=o.executed_qty,
            average=o.avg_price or None,
            ts_ms=o.created_ms,
            fee_cost=o.fee_total if o.executed_qty else None,
            fee_asset=o.fee_asset or None,
        )

    def _reject(self, r: Reject, req: OrderRequest, market: Market) -> Exception:
        what = f"{req.side} {req.amount} {req.symbol}"
        if r.kind == BALANCE:
            return InsufficientFundsError(
                f"{self.name}: insufficient balance for {what}: {r.detail}",
                "lower the order size or cancel open orders to free balance",
            )
        if r.kind == DUPLICATE:  # unreachable: looked up first; kept for a clear message
            return InvalidOrderError(
                f"{self.name}: client order id {req.client_order_id} already used", "use a new intent"
            )
        return InvalidOrderError(
            f"{self.name} rejected {what}: {r.kind} {r.detail}",
            "check price and amount against the market's tick, lot and minimum notional",
        )
