"""The simulated matching engine: order checks, balance locking, fills on closed bars, fees.

Used by the emulator (behind the Binance and Bitget routes) and by the paper venue, so both fill
orders exactly as the backtester does: **the one fill model** `strategies.fill_model.fill_time`.

Virtual time -> bars (the rule that keeps a replay comparable with a backtest):
- Matching runs on one bar series per symbol (`BarSource.bar_ms`, e.g. the finest stored candles).
- An order accepted at virtual time T is eligible from the first bar whose open time is >= T. An
  order placed exactly at a bar boundary (the live runner acts at candle close, which is the next
  candle's open) is live for that next bar, as in the backtester; an order placed inside a bar
  waits for the following one, because the part of the bar before T is not known to the order.
- Bars are matched only once closed (open + bar_ms <= now); fills are visible from that moment,
  never earlier, so the engine leaks nothing from the future. A fill's timestamp is its position
  along the bar's intrabar path (fill_time / 3 of the bar).
- Limit orders always rest first (no immediate taker fill at placement, as in the backtester) and
  fill at their limit price, paying the maker fee. Market orders fill at once at the last known
  price (`BarSource.last_price`: at a bar boundary that is the new bar's open), paying the taker fee.
- Fees as the exchanges charge them without a fee token: buys in the base asset, sells in quote.
- Partial fills (`FillPolicy`): per bar an order fills at most `max_fill_fraction` of its original
  quantity and at most `volume_cap_fraction` of the bar's volume, on the lot grid, never less than
  one lot, so a touched order always makes progress.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from core.market_rules import MarketRules
from exchange.emulator.accounts import (
    CANCELED,
    FILLED,
    PARTIALLY_FILLED,
    Account,
    SimOrder,
    SimTrade,
)
from strategies.fill_model import fill_time

# Reasons an order is refused; each venue module turns them into its own code and message.
PRICE_FILTER, LOT_SIZE, NOTIONAL, BALANCE, DUPLICATE, NO_PRICE = (
    "PRICE_FILTER",
    "LOT_SIZE",
    "NOTIONAL",
    "BALANCE",
    "DUPLICATE",
    "NO_PRICE",
)
_QTY_EPS = 1e-12
_BARS_PER_BATCH = 1024


class MarketLike(Protocol):
    @property
    def base(self) -> str: ...
    @property
    def quote(self) -> str: ...
    @property
    def rules(self) -> MarketRules: ...


class BarSource(Protocol):
    def bar_ms(self, symbol_id: str) -> int | None:
        """Length of the bars orders are matched on, or None when the symbol has no candles."""

    def closed_bars(self, symbol_id: str, start_ms: int, now_ms: int) -> np.ndarray:
        """(n, 6) float rows ts, o, h, l, c, v: bars with start_ms <= ts and ts + bar_ms <= now_ms."""

    def last_price(self, symbol_id: str, now_ms: int) -> float | None:
        """The price known at now_ms (market orders fill here)."""


class Reject(Exception):  # noqa: N818 - a refusal, turned into the venue's error answer
    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail


@dataclass(frozen=True)
class FillPolicy:
    max_fill_fraction: float = 1.0
    volume_cap_fraction: float | None = None
    # Touch fills: a limit fills when the bar merely reaches its price (strategy.touch_fills).
    touch: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.max_fill_fraction <= 1:
            raise ValueError(f"max_fill_fraction must be in (0, 1], got {self.max_fill_fraction}")
        if self.volume_cap_fraction is not None and not 0 < self.volume_cap_fraction <= 1:
            raise ValueError(f"volume_cap_fraction must be in (0, 1], got {self.volume_cap_fraction}")


def on_grid(x: float, step: float) -> bool:
    q = x / step
    return abs(q - round(q)) <= max(1e-6, abs(q) * 1e-12)


def check_filters(market: MarketLike, qty: float, price: float | None) -> None:
    """Raise Reject like the venue's filters would (price is the limit, or the last price for market)."""
    r = market.rules
    if price is None or price <= 0:
        raise Reject(NO_PRICE if price is None else PRICE_FILTER, "price must be positive")
    if qty <= 0 or not on_grid(qty, r.lot_size) or qty < r.min_qty * (1 - 1e-9):
        raise Reject(LOT_SIZE, f"quantity {qty} must be >= {r.min_qty} and a multiple of {r.lot_size}")
    if price * qty < r.min_notional * (1 - 1e-9):
        raise Reject(NOTIONAL, f"value {price * qty:.8f} below minimum {r.min_notional}")


class MatchingEngine:
    """Owns order and trade ids and the per-symbol bar cursor. Callers hold the state lock."""

    def __init__(self, bars: BarSource, policy: FillPolicy | None = None) -> None:
        self.bars = bars
        self.policy = policy or FillPolicy()
        self.next_order_id = 1
        self.next_trade_id = 1
        # Bars with open time < cursor have been matched (per symbol).
        self.cursor_ms: dict[str, int] = {}

    def place(
        self,
        account: Account,
        market: MarketLike,
        side: str,
        order_type: str,
        qty: float,
        price: float | None,
        client_order_id: str,
        now_ms: int,
    ) -> SimOrder:
        sid = market.rules.symbol
        if account.order_by_client_id(client_order_id) is not None:
            raise Reject(DUPLICATE, client_order_id)
        if order_type == "limit":
            if price is not None and price > 0 and not on_grid(price, market.rules.tick_size):
                raise Reject(PRICE_FILTER, f"price {price} is not a multiple of {market.rules.tick_size}")
            check_filters(market, qty, price)
            assert price is not None
            fill_price = price
        else:
            last = self.bars.last_price(sid, now_ms)
            check_filters(market, qty, last)
            assert last is not None
            fill_price = last
        self._check_balance(account, market, side, qty, fill_price)
        bar_ms = self.bars.bar_ms(sid) or 1
        order = SimOrder(
            order_id=self.next_order_id,
            client_order_id=client_order_id,
            symbol_id=sid,
            side=side,
            type=order_type,
            price=fill_price,
            orig_qty=qty,
            created_ms=now_ms,
            eligible_from_ms=-(-now_ms // bar_ms) * bar_ms,
            updated_ms=now_ms,
        )
        self.next_order_id += 1
        if order_type == "limit":
            self._lock(account, market, order)
        account.add_order(order)
        if order_type == "market":
            self._fill(account, market, order, fill_price, qty, now_ms, is_maker=False)
        return order

    def cancel(self, account: Account, market: MarketLike, order: SimOrder, now_ms: int) -> SimOrder:
        if not order.is_open:
            raise Reject("NOT_OPEN", str(order.order_id))
        asset = market.quote if order.side == "buy" else market.base
        account.add(asset, free_delta=order.locked_left, locked_delta=-order.locked_left)
        order.locked_left = 0.0
        order.status = CANCELED
        order.updated_ms = now_ms
        account.mark_changed(order)
        return order

    def match(self, accounts: Iterable[Account], markets: Mapping[str, MarketLike], now_ms: int) -> int:
        """Fill resting orders on every bar closed by now_ms; returns the number of fills."""
        by_symbol: dict[str, list[tuple[Account, SimOrder]]] = {}
        for acc in accounts:
            for o in acc.open_orders():
                if o.type == "limit":
                    by_symbol.setdefault(o.symbol_id, []).append((acc, o))
        fills = 0
        for sid, entries in by_symbol.items():
            if sid in markets:
                fills += self._match_symbol(sid, markets[sid], entries, now_ms)
        return fills

    def _match_symbol(
        self, sid: str, market: MarketLike, entries: list[tuple[Account, SimOrder]], now_ms: int
    ) -> int:
        bar_ms = self.bars.bar_ms(sid)
        if bar_ms is None:
            return 0
        start = max(self.cursor_ms.get(sid, 0), min(o.eligible_from_ms for _, o in entries))
        rows = self.bars.closed_bars(sid, start, now_ms)
        fills = 0
        # Bars as plain Python floats (each is read once per order), a bounded number at a time.
        for first in range(0, len(rows), _BARS_PER_BATCH):
            for row in rows[first : first + _BARS_PER_BATCH].tolist():
                fills += self._match_bar(market, entries, row, bar_ms)
        if len(rows):
            self.cursor_ms[sid] = int(rows[-1, 0]) + bar_ms
        return fills

    def _match_bar(
        self, market: MarketLike, entries: list[tuple[Account, SimOrder]], row: list[float], bar_ms: int
    ) -> int:
        ts, o, h, l, c, v = row[:6]  # noqa: E741
        touch = self.policy.touch
        hits = []
        for acc, order in entries:
            if order.is_open and order.eligible_from_ms <= ts:
                t = fill_time(order.side == "buy", order.price, o, h, l, c, touch)
                if t >= 0.0:
                    hits.append((t, order.order_id, acc, order))
        if len(hits) > 1:
            hits.sort(key=lambda x: (x[0], x[1]))
        for t, _, acc, order in hits:
            qty = self._fill_qty(market.rules, order, v)
            fill_ts = int(ts) + int(t / 3.0 * (bar_ms - 1))
            self._fill(acc, market, order, order.price, qty, fill_ts, is_maker=True)
        return len(hits)

    def _fill_qty(self, rules: MarketRules, order: SimOrder, bar_volume: float) -> float:
        remaining = order.remaining_qty
        cap = order.orig_qty * self.policy.max_fill_fraction
        if self.policy.volume_cap_fraction is not None:
            cap = min(cap, bar_volume * self.policy.volume_cap_fraction)
        cap = max(rules.lot_size, rules.round_amount(cap))
        return remaining if cap >= remaining - _QTY_EPS else cap

    def _check_balance(
        self, account: Account, market: MarketLike, side: str, qty: float, price: float
    ) -> None:
        asset, need = (market.quote, price * qty) if side == "buy" else (market.base, qty)
        free = account.balance(asset).free
        if need > free * (1 + 1e-12) + 1e-12:
            raise Reject(BALANCE, f"needs {need:.8f} {asset}, {free:.8f} free")

    def _lock(self, account: Account, market: MarketLike, order: SimOrder) -> None:
        asset, amount = (
            (market.quote, order.price * order.orig_qty)
            if order.side == "buy"
            else (market.base, order.orig_qty)
        )
        account.add(asset, free_delta=-amount, locked_delta=amount)
        order.locked_left = amount

    def _fill(
        self,
        acc: Account,
        market: MarketLike,
        order: SimOrder,
        price: float,
        qty: float,
        ts_ms: int,
        is_maker: bool,
    ) -> None:
        rules = market.rules
        fee_rate = rules.maker_fee if is_maker else rules.taker_fee
        quote_qty = price * qty
        resting = order.type == "limit"
        if order.side == "buy":
            self._spend(acc, order, market.quote, quote_qty, resting)
            fee, fee_asset = qty * fee_rate, market.base
            acc.add(market.base, free_delta=qty - fee)
        else:
            self._spend(acc, order, market.base, qty, resting)
            fee, fee_asset = quote_qty * fee_rate, market.quote
            acc.add(market.quote, free_delta=quote_qty - fee)
        order.executed_qty = round(order.executed_qty + qty, 12)
        order.cum_quote += quote_qty
        order.fee_total += fee
        order.fee_asset = fee_asset
        order.updated_ms = ts_ms
        done = order.remaining_qty <= _QTY_EPS
        order.status = FILLED if done else PARTIALLY_FILLED
        if done and order.locked_left:  # float dust of the lock goes back to free
            asset = market.quote if order.side == "buy" else market.base
            acc.add(asset, free_delta=order.locked_left, locked_delta=-order.locked_left)
            order.locked_left = 0.0
        acc.trades.append(
            SimTrade(
                self.next_trade_id,
                order.order_id,
                order.symbol_id,
                order.side,
                price,
                qty,
                quote_qty,
                fee,
                fee_asset,
                ts_ms,
                is_maker,
            )
        )
        self.next_trade_id += 1
        acc.mark_changed(order)

    @staticmethod
    def _spend(acc: Account, order: SimOrder, asset: str, amount: float, resting: bool) -> None:
        if resting:
            amount = min(amount, order.locked_left)
            acc.add(asset, locked_delta=-amount)
            order.locked_left = round(order.locked_left - amount, 12)
        else:
            acc.add(asset, free_delta=-amount)
