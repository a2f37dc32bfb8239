"""Bitget v2 spot trading endpoints: assets, place/cancel order, unfilled orders, order info, fills.

Every endpoint is signed with the ACCESS-* headers: ACCESS-KEY names the account (missing: 40001,
unknown: 40006), ACCESS-PASSPHRASE must match it (missing: 40011, wrong: 40012), ACCESS-SIGN is
base64(HMAC-SHA256(secret, timestamp + METHOD + path [+ "?" + query] + body)) (missing: 40003,
wrong: 40009), ACCESS-TIMESTAMP must be within 30 s of the emulator's clock (malformed: 40005,
outside: 40008). Order rules: price/size with more decimals than the market allows get 40808
(checkBDScale), value under the minimum 45110, not enough balance 43012, cancel of an unknown or
closed order 43001, a clientOid that is not 1-32 of [A-Za-z0-9_] 43011. A reused clientOid gets
40017 "Duplicate clientOid" (the emulator's choice; Bitget documents no dedicated code).
(ccxt's unified-account probe `GET /api/v3/account/settings` is answered by the market-data
module with 40084, a classic account, so ccxt stays on these v2 endpoints.)
"""

from __future__ import annotations

import json
import re
from typing import Any

from core.market_rules import floor_to_step
from exchange.emulator.accounts import CANCELED, FILLED, NEW, PARTIALLY_FILLED, Account, SimOrder, SimTrade
from exchange.emulator.bitget_market import require_market
from exchange.emulator.markets import EmulatorMarket
from exchange.emulator.matching import BALANCE, DUPLICATE, LOT_SIZE, NOTIONAL, PRICE_FILTER, Reject
from exchange.emulator.router import HttpError, Request, Response, Router
from exchange.emulator.signing import bitget_signature_ok
from exchange.emulator.state import EmulatorState
from exchange.emulator.trading import TradingState, trading_state
from exchange.emulator.wire import decimals_of, int_param, num

VENUE = "bitget"
# GET /api/v2/spot/trade/fills, bitget.com/api-doc/spot/trade/Get-Fills: "Get Fills(It only supports
# to get the data within 90days. The older data can be downloaded from web)"; endTime: "The interval
# between startTime and endTime must not exceed 90 days."; limit: "Default: 100, max 100";
# idLessThan: "Requests the content on the page before this ID (older data), the value input should
# be the tradeId of the corresponding interface." So a page is the newest `limit` fills of the range
# and one walks back with idLessThan. Bitget documents no error code for a too-long range: the
# emulator answers 40017 "Parameter verification failed" (ccxt: BadRequest).
FILLS_WINDOW_MS = 90 * 86_400_000
MAX_SKEW_MS = 30_000
CLIENT_OID_RE = re.compile(r"^[A-Za-z0-9_]{1,32}$")
STATUS = {NEW: "live", PARTIALLY_FILLED: "partially_filled", FILLED: "filled", CANCELED: "cancelled"}


def _err(code: str, msg: str, now_ms: int) -> HttpError:
    """Bitget's error envelope stamped with the request's `now` (the clock may run meanwhile)."""
    return HttpError(400, {"code": code, "msg": msg, "requestTime": now_ms, "data": None})


def _ok(data: Any, now_ms: int) -> Response:
    return Response(200, {"code": "00000", "msg": "success", "requestTime": now_ms, "data": data})


def authenticate(req: Request, trading: TradingState, now_ms: int) -> Account:
    key, sign = req.header("access-key"), req.header("access-sign")
    ts, passphrase = req.header("access-timestamp"), req.header("access-passphrase")
    if not key:
        raise _err("40001", "ACCESS_KEY cannot be empty", now_ms)
    if not sign:
        raise _err("40003", "Signature cannot be empty", now_ms)
    if not passphrase:
        raise _err("40011", "ACCESS_PASSPHRASE cannot be empty", now_ms)
    if not ts or not ts.isdigit():
        raise _err("40005", "Invalid ACCESS_TIMESTAMP", now_ms)
    account = trading.by_key(key)
    if account is None:
        raise _err("40006", "Invalid ACCESS_KEY", now_ms)
    if passphrase != account.spec.passphrase:
        raise _err("40012", "apikey/password is incorrect", now_ms)
    body = req.body.decode("utf-8", "replace")
    if not bitget_signature_ok(account.spec.secret, sign, ts, req.method, req.path, req.raw_query, body):
        raise _err("40009", "sign signature error", now_ms)
    if abs(now_ms - int(ts)) > MAX_SKEW_MS:
        raise _err("40008", "Request timestamp expired", now_ms)
    return account


def order_body(o: SimOrder, acc: Account, unfilled: bool = False) -> dict[str, Any]:
    market_buy = o.type == "market" and o.side == "buy"
    body: dict[str, Any] = {
        "userId": acc.name,
        "symbol": o.symbol_id,
        "orderId": str(o.order_id),
        "clientOid": o.client_order_id,
        # Bitget sizes a market buy in quote currency.
        "size": num(round(o.cum_quote, 8)) if market_buy else num(o.orig_qty),
        "orderType": o.type,
        "side": o.side,
        "status": STATUS[o.status],
        "baseVolume": num(o.executed_qty),
        "quoteVolume": num(round(o.cum_quote, 8)),
        "enterPointSource": "API",
        "orderSource": "normal",
        "cTime": str(o.created_ms),
        "uTime": str(o.updated_ms),
    }
    limit_price = num(o.price) if o.type == "limit" else "0"
    if unfilled:  # unfilled-orders: priceAvg is the order price, basePrice the average fill
        body.update(priceAvg=limit_price, basePrice=num(o.avg_price))
    else:
        body.update(price=limit_price, priceAvg=num(o.avg_price))
    if o.fee_total > 0:
        body["feeDetail"] = json.dumps(
            {
                o.fee_asset: {
                    "deduction": False,
                    "feeCoinCode": o.fee_asset,
                    "totalDeductionFee": 0,
                    "totalFee": -o.fee_total,
                }
            }
        )
    return body


def fill_body(t: SimTrade, acc: Account) -> dict[str, Any]:
    return {
        "userId": acc.name,
        "symbol": t.symbol_id,
        "orderId": str(t.order_id),
        "tradeId": str(t.trade_id),
        "orderType": "limit" if t.is_maker else "market",
        "side": t.side,
        "priceAvg": num(t.price),
        "size": num(t.qty),
        "amount": num(round(t.quote_qty, 8)),
        "feeDetail": {
            "deduction": "no",
            "feeCoin": t.fee_asset,
            "totalDeductionFee": "0",
            "totalFee": num(-t.fee),
        },
        "tradeScope": "maker" if t.is_maker else "taker",
        "cTime": str(t.ts_ms),
        "uTime": str(t.ts_ms),
    }


class BitgetTrading:
    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    def _begin(self, req: Request) -> tuple[TradingState, Account, int]:
        trading = trading_state(self.state)
        now = self.state.now_ms()
        account = authenticate(req, trading, now)
        trading.sync(now)
        return trading, account, now

    def _market(self, symbol: str | None, now: int, required: bool = True) -> EmulatorMarket | None:
        if not symbol and not required:
            return None
        return require_market(self.state, {"symbol": symbol or ""})

    def assets(self, req: Request) -> Response:
        with self.state.lock:
            _, acc, now = self._begin(req)
            coin = (req.query.get("coin") or "").upper()
            data = [
                {
                    "coin": a,
                    "available": num(b.free),
                    "frozen": num(b.locked),
                    "locked": "0",
                    "limitAvailable": "0",
                    "uTime": str(now),
                }
                for a, b in sorted(acc.balances.items())
                if not coin or a == coin
            ]
            return _ok(data, now)

    def place_order(self, req: Request) -> Response:
        with self.state.lock:
            trading, acc, now = self._begin(req)
            p = req.json()
            market = self._market(p.get("symbol"), now)
            assert market is not None
            side, otype, qty, price = _order_params(p, market, self.state, now)
            cid = str(p.get("clientOid") or f"emu{trading.engine.next_order_id}x{now}")
            if not CLIENT_OID_RE.match(cid):
                raise _err("43011", "The parameter does not meet the specification clientOid", now)
            try:
                order = trading.engine.place(acc, market, side, otype, qty, price, cid, now)
            except Reject as r:
                raise _reject_error(r, market, p, now) from None
            return _ok({"orderId": str(order.order_id), "clientOid": order.client_order_id}, now)

    def cancel_order(self, req: Request) -> Response:
        with self.state.lock:
            trading, acc, now = self._begin(req)
            p = req.json()
            market = self._market(p.get("symbol"), now)
            assert market is not None
            order = _find(acc, p.get("orderId"), p.get("clientOid"))
            if order is None or not order.is_open or order.symbol_id != market.symbol_id:
                raise _err("43001", "The order does not exist", now)
            trading.engine.cancel(acc, market, order, now)
            return _ok({"orderId": str(order.order_id), "clientOid": order.client_order_id}, now)

    def unfilled_orders(self, req: Request) -> Response:
        with self.state.lock:
            _, acc, now = self._begin(req)
            market = self._market(req.query.get("symbol"), now, required=False)
            limit = _limit(req.query, now)
            orders = sorted(acc.open_orders(market.symbol_id if market else None), key=lambda o: -o.order_id)
            return _ok([order_body(o, acc, unfilled=True) for o in orders[:limit]], now)

    def order_info(self, req: Request) -> Response:
        with self.state.lock:
            _, acc, now = self._begin(req)
            q = req.query
            if not q.get("orderId") and not q.get("clientOid"):
                raise _err("40017", "Parameter verification failed: orderId or clientOid required", now)
            order = _find(acc, q.get("orderId"), q.get("clientOid"))
            # Bitget answers an unknown order with an empty list, not an error code.
            return _ok([order_body(order, acc)] if order else [], now)

    def fills(self, req: Request) -> Response:
        with self.state.lock:
            _, acc, now = self._begin(req)
            q = req.query
            market = self._market(q.get("symbol"), now, required=False)

            def err() -> HttpError:
                return _err("40017", "Parameter verification failed", now)

            start = int_param(q, "startTime", err)
            end = int_param(q, "endTime", err)
            if start is not None and end is not None and end - start > FILLS_WINDOW_MS:
                raise _err(
                    "40017",
                    "Parameter verification failed: the interval between startTime and "
                    "endTime must not exceed 90 days",
                    now,
                )
            order_id = int_param(q, "orderId", err)
            before_id = int_param(q, "idLessThan", err)
            oldest = max(start or 0, now - FILLS_WINDOW_MS)  # "only supports to get the data within 90days"
            trades = [
                t
                for t in (acc.trades if market is None else acc.trades_from(market.symbol_id, oldest))
                if (market is None or t.symbol_id == market.symbol_id)
                and oldest <= t.ts_ms <= (end if end is not None else now)
                and (order_id is None or t.order_id == order_id)
                and (before_id is None or t.trade_id < before_id)
            ]
            # Newest first, `limit` of them; older pages with idLessThan = the last tradeId seen.
            return _ok([fill_body(t, acc) for t in reversed(trades[-_limit(q, now) :])], now)


def _order_params(
    p: dict[str, Any], market: EmulatorMarket, state: EmulatorState, now: int
) -> tuple[str, str, float, float | None]:
    side, otype = str(p.get("side", "")).lower(), str(p.get("orderType", "")).lower()
    if side not in ("buy", "sell") or otype not in ("limit", "market"):
        raise _err("40017", "Parameter verification failed: side and orderType", now)
    if otype == "limit" and str(p.get("force", "gtc")).lower() != "gtc":
        raise _err("40017", "Parameter verification failed: force", now)
    size = _decimal(p, "size", market, decimals_of(market.rules.lot_size), now)
    if size is None:
        raise _err("40017", "Parameter verification failed: size", now)
    price = (
        _decimal(p, "price", market, decimals_of(market.rules.tick_size), now) if otype == "limit" else None
    )
    if otype == "limit" and price is None:
        raise _err("40017", "Parameter verification failed: price", now)
    if otype == "market" and side == "buy":  # size is the quote amount to spend
        last = state.candles.last_price(market.symbol_id, now)
        if last is None or size < market.rules.min_notional:
            raise _err(
                "45110", f"less than the minimum amount {num(market.rules.min_notional)} {market.quote}", now
            )
        size = market.rules.round_amount(floor_to_step(size / last, market.rules.lot_size))
    return side, otype, size, price


def _decimal(p: dict[str, Any], name: str, market: EmulatorMarket, scale: int, now: int) -> float | None:
    raw = p.get(name)
    if raw is None or raw == "":
        return None
    text = str(raw)
    try:
        value = float(text)
    except ValueError:
        raise _err("40017", f"Parameter verification failed: {name}", now) from None
    decimals = len(text.split(".", 1)[1].rstrip("0")) if "." in text else 0
    quote_sized = name == "size" and p.get("orderType") == "market" and p.get("side") == "buy"
    if decimals > scale and not quote_sized:
        raise _err(
            "40808",
            f"Parameter verification exception {name} checkBDScale error value={text} checkScale={scale}",
            now,
        )
    return value


def _reject_error(r: Reject, market: EmulatorMarket, p: dict[str, Any], now: int) -> HttpError:
    if r.kind in (PRICE_FILTER, LOT_SIZE):
        name = "price" if r.kind == PRICE_FILTER else "size"
        step = market.rules.tick_size if r.kind == PRICE_FILTER else market.rules.lot_size
        if r.kind == LOT_SIZE and not str(p.get("size", "")).strip("0."):
            return _err(
                "45110", f"less than the minimum amount {num(market.rules.min_notional)} {market.quote}", now
            )
        return _err(
            "40808",
            f"Parameter verification exception {name} checkBDScale error value={p.get(name)} checkScale={decimals_of(step)}",
            now,
        )
    if r.kind == NOTIONAL:
        return _err(
            "45110", f"less than the minimum amount {num(market.rules.min_notional)} {market.quote}", now
        )
    if r.kind == BALANCE:
        return _err("43012", "Insufficient balance", now)
    if r.kind == DUPLICATE:
        return _err("40017", "Duplicate clientOid", now)
    return _err("40015", "System is abnormal, please try again later", now)


def _find(acc: Account, order_id: Any, client_oid: Any) -> SimOrder | None:
    if order_id:
        try:
            order = acc.orders.get(int(order_id))
        except ValueError:
            return None
        return order if order and (not client_oid or order.client_order_id == client_oid) else None
    return acc.order_by_client_id(str(client_oid)) if client_oid else None


def _limit(q: dict[str, str], now: int) -> int:
    limit = (
        int_param(q, "limit", lambda: _err("40017", "Parameter verification failed: limit", now), 100) or 100
    )
    return max(1, min(limit, 100))


def register_bitget_trading_routes(router: Router, state: EmulatorState) -> None:
    """Bitget v2 spot account and trade endpoints."""
    api = BitgetTrading(state)
    v = {"venue": VENUE, "signed": True}
    router.get("/api/v2/spot/account/assets", api.assets, weight=1, **v)
    router.post("/api/v2/spot/trade/place-order", api.place_order, weight=1, **v)
    router.post("/api/v2/spot/trade/cancel-order", api.cancel_order, weight=1, **v)
    router.get("/api/v2/spot/trade/unfilled-orders", api.unfilled_orders, weight=1, **v)
    router.get("/api/v2/spot/trade/orderInfo", api.order_info, weight=1, **v)
    router.get("/api/v2/spot/trade/fills", api.fills, weight=1, **v)
