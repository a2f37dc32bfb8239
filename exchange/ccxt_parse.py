"""ccxt's unified dicts -> the port's types (markets with MarketRules, balances, orders, trades)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from core.market_rules import DEFAULT_MIN_NOTIONAL, MarketRules, venue_fees
from exchange.port import OPEN, Balance, Market, Order, Trade

CANDLE_COLUMNS = ["ts", "open", "high", "low", "close", "volume"]


def market(m: dict[str, Any], venue: str, maker_fee_pct: float | None, taker_fee_pct: float | None) -> Market:
    precision, limits = m.get("precision") or {}, m.get("limits") or {}
    tick = float(precision.get("price") or 0.0)
    lot = float(precision.get("amount") or 0.0)
    min_qty = float((limits.get("amount") or {}).get("min") or lot)
    min_notional = (limits.get("cost") or {}).get("min")
    maker, taker = venue_fees(venue, maker_fee_pct, taker_fee_pct)
    rules = MarketRules(
        symbol=m["symbol"],
        tick_size=tick,
        lot_size=lot,
        min_qty=max(min_qty, lot),
        min_notional=float(
            min_notional if min_notional is not None else DEFAULT_MIN_NOTIONAL.get(venue, 5.0)
        ),
        maker_fee=maker,
        taker_fee=taker,
    )
    return Market(m["symbol"], m["id"], m["base"], m["quote"], rules, bool(m.get("active", True)))


def balances(raw: dict[str, Any]) -> dict[str, Balance]:
    out = {}
    for asset, entry in raw.items():
        if not isinstance(entry, dict) or asset in ("info", "free", "used", "total", "timestamp", "datetime"):
            continue
        free, used = float(entry.get("free") or 0.0), float(entry.get("used") or 0.0)
        if free or used:
            out[asset] = Balance(asset, free, used)
    return out


def order(o: dict[str, Any], fallback_client_id: str | None = None) -> Order:
    amount = float(o.get("amount") or 0.0)
    filled = float(o.get("filled") or 0.0)
    status = o.get("status") or OPEN
    fee = o.get("fee") or {}
    otype = (o.get("type") or "limit").lower()
    price = o.get("price")
    return Order(
        id=str(o["id"]),
        client_order_id=o.get("clientOrderId") or fallback_client_id,
        symbol=o["symbol"],
        side=(o.get("side") or "").lower(),  # type: ignore[arg-type]
        type=otype,  # type: ignore[arg-type]
        status=status,
        price=float(price) if price and otype == "limit" else None,
        amount=amount,
        filled=filled,
        average=float(o["average"]) if o.get("average") else None,
        ts_ms=int(o["timestamp"]) if o.get("timestamp") else None,
        fee_cost=float(fee["cost"]) if fee.get("cost") is not None else None,
        fee_asset=fee.get("currency"),
    )


def trade(t: dict[str, Any]) -> Trade:
    fee = t.get("fee") or {}
    maker = t.get("takerOrMaker")
    return Trade(
        id=str(t["id"]),
        order_id=str(t.get("order")),
        symbol=t["symbol"],
        side=(t.get("side") or "").lower(),  # type: ignore[arg-type]
        price=float(t["price"]),
        amount=float(t["amount"]),
        fee_cost=float(fee.get("cost") or 0.0),
        fee_asset=fee.get("currency"),
        ts_ms=int(t["timestamp"]),
        is_maker=None if maker is None else maker == "maker",
    )


def candle_rows(rows: list[list[Any]]) -> np.ndarray:
    """ccxt OHLCV rows -> a float64 (n, 6) array ts, o, h, l, c, v, sorted by ts, unique (the last
    of duplicate rows wins). ms timestamps are exact in float64 (< 2**53)."""
    if not rows:
        return np.empty((0, 6), dtype=np.float64)
    arr = np.asarray([r[:6] for r in rows], dtype=np.float64)
    ts = arr[:, 0]
    if len(arr) > 1 and not bool(np.all(ts[1:] > ts[:-1])):
        _, first_in_reversed = np.unique(ts[::-1], return_index=True)  # sorted; last occurrence wins
        arr = arr[len(arr) - 1 - first_in_reversed]
    return arr


def candle_frame(arr: np.ndarray) -> pd.DataFrame:
    """A `candle_rows` array -> the shared candle frame (ts int64 ms, float64 OHLCV)."""
    cols = {"ts": arr[:, 0].astype(np.int64)}
    cols.update({c: np.ascontiguousarray(arr[:, i]) for i, c in enumerate(CANDLE_COLUMNS[1:], start=1)})
    return pd.DataFrame(cols)


def candles(rows: list[list[Any]]) -> pd.DataFrame:
    """ccxt OHLCV rows -> the shared candle frame (ts int64 ms, float64 OHLCV, sorted, unique)."""
    return candle_frame(candle_rows(rows))
