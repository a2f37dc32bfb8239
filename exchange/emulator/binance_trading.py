"""Binance spot trading endpoints: account, orders, open orders, trades, with real signing and errors.

Every endpoint is SIGNED: `X-MBX-APIKEY` names the account (missing: 401 -2014, unknown: 401 -2015),
`signature` is the hex HMAC-SHA256 of the query+body (missing: -1102, wrong: -1022), and
`timestamp` must satisfy `now - recvWindow <= timestamp < now + 1000` on the emulator's clock
(else -1021). `newClientOrderId` is honoured and unique per account (stricter than Binance, which
only refuses a duplicate of an open order): a second order with the same id gets -2010
"Duplicate order sent.". Filters answer -1013 "Filter failure: PRICE_FILTER | LOT_SIZE | NOTIONAL".
"""

from __future__ import annotations

import re
from typing import Any

from exchange.emulator.accounts import Account, SimOrder, SimTrade
from exchange.emulator.binance_market import binance_error, symbol_market
from exchange.emulator.markets import EmulatorMarket
from exchange.emulator.matching import BALANCE, DUPLICATE, LOT_SIZE, NOTIONAL, PRICE_FILTER, Reject
from exchange.emulator.router import HttpError, Request, Response, Router
from exchange.emulator.signing import binance_signature_ok, split_binance_signature
from exchange.emulator.state import EmulatorState
from exchange.emulator.trading import TradingState, trading_state
from exchange.emulator.wire import fixed

VENUE = "binance"
DEFAULT_RECV_WINDOW_MS, MAX_RECV_WINDOW_MS, MAX_AHEAD_MS = 5_000, 60_000, 1_000
CLIENT_ID_RE = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
_REJECT_ANSWERS = {
    PRICE_FILTER: (-1013, "Filter failure: PRICE_FILTER"),
    LOT_SIZE: (-1013, "Filter failure: LOT_SIZE"),
    NOTIONAL: (-1013, "Filter failure: NOTIONAL"),
    BALANCE: (-2010, "Account has insufficient balance for requested action."),
    DUPLICATE: (-2010, "Duplicate order sent."),
}


def _mandatory(name: str) -> HttpError:
    return binance_error(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def _int(params: dict[str, str], name: str, default: int | None = None) -> int | None:
    """An integer parameter; Binance's -1100 answer when it is not one (built only then)."""
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise binance_error(
            -1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'."
        ) from None


def authenticate(req: Request, trading: TradingState, now_ms: int) -> Account:
    """The account a signed request acts for, or the HttpError Binance would answer."""
    key = req.header("x-mbx-apikey")
    if not key:
        raise binance_error(-2014, "API-key format invalid.", 401)
    account = trading.by_key(key)
    if account is None:
        raise binance_error(-2015, "Invalid API-key, IP, or permissions for action.", 401)
    body = req.body.decode("utf-8", "replace") if req.method in ("POST", "PUT") else ""
    payload, signature = split_binance_signature(req.raw_query, body)
    if not signature:
        raise _mandatory("signature")
    if not binance_signature_ok(account.spec.secret, payload, signature):
        raise binance_error(-1022, "Signature for this request is not valid.")
    params = req.params()
    ts = _int(params, "timestamp")
    if ts is None:
        raise _mandatory("timestamp")
    window = _int(params, "recvWindow", DEFAULT_RECV_WINDOW_MS)
    if window is None or window > MAX_RECV_WINDOW_MS or window <= 0:
        raise binance_error(-1131, "recvWindow must be less than 60000")
    if ts >= now_ms + MAX_AHEAD_MS:
        raise binance_error(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")
    if now_ms - ts > window:
        raise binance_error(-1021, "Timestamp for this request is outside of the recvWindow.")
    return account


def order_body(o: SimOrder) -> dict[str, Any]:
    return {
        "symbol": o.symbol_id,
        "orderId": o.order_id,
        "orderListId": -1,
        "clientOrderId": o.client_order_id,
        "price": fixed(o.price if o.type == "limit" else 0.0),
        "origQty": fixed(o.orig_qty),
        "executedQty": fixed(o.executed_qty),
        "cummulativeQuoteQty": fixed(round(o.cum_quote, 8)),
        "status": o.status,
        "timeInForce": "GTC",
        "type": o.type.upper(),
        "side": o.side.upper(),
        "stopPrice": fixed(0.0),
        "icebergQty": fixed(0.0),
        "time": o.created_ms,
        "updateTime": o.updated_ms,
        "isWorking": True,
        "workingTime": o.created_ms,
        "origQuoteOrderQty": fixed(0.0),
        "selfTradePreventionMode": "EXPIRE_MAKER",
    }


def trade_body(t: SimTrade) -> dict[str, Any]:
    return {
        "symbol": t.symbol_id,
        "id": t.trade_id,
        "orderId": t.order_id,
        "orderListId": -1,
        "price": fixed(t.price),
        "qty": fixed(t.qty),
        "quoteQty": fixed(round(t.quote_qty, 8)),
        "commission": fixed(round(t.fee, 10)),
        "commissionAsset": t.fee_asset,
        "time": t.ts_ms,
        "isBuyer": t.side == "buy",
        "isMaker": t.is_maker,
        "isBestMatch": True,
    }


class BinanceTrading:
    """The handlers; each authenticates, matches up to now, then acts, all under the state lock."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    def _begin(self, req: Request) -> tuple[TradingState, Account, int]:
        trading = trading_state(self.state)
        now = self.state.now_ms()
        account = authenticate(req, trading, now)
        trading.sync(now)
        return trading, account, now

    def account(self, req: Request) -> Response:
        with self.state.lock:
            trading, acc, now = self._begin(req)
            # Account-wide rates as Binance shows them; the matching engine charges each market's own.
            rules = [m.rules for m in self.state.markets.values()]
            maker = fixed(rules[0].maker_fee if rules else 0.001)
            taker = fixed(rules[0].taker_fee if rules else 0.001)
            balances = [
                {"asset": a, "free": fixed(b.free), "locked": fixed(b.locked)}
                for a, b in sorted(acc.balances.items())
            ]
            return Response(
                200,
                {
                    "makerCommission": 10,
                    "takerCommission": 10,
                    "buyerCommission": 0,
                    "sellerCommission": 0,
                    "commissionRates": {
                        "maker": maker,
                        "taker": taker,
                        "buyer": fixed(0.0),
                        "seller": fixed(0.0),
                    },
                    "canTrade": True,
                    "canWithdraw": True,
                    "canDeposit": True,
                    "brokered": False,
                    "requireSelfTradePrevention": False,
                    "preventSor": False,
                    "updateTime": now,
                    "accountType": "SPOT",
                    "balances": balances,
                    "permissions": ["SPOT"],
                    "uid": 1000 + list(trading.accounts).index(acc.name),
                },
            )

    def new_order(self, req: Request) -> Response:
        with self.state.lock:
            trading, acc, now = self._begin(req)
            p = req.params()
            market = symbol_market(self.state, p)
            assert market is not None
            side, otype, qty, price = _order_params(p)
            cid = p.get("newClientOrderId") or f"emu{trading.engine.next_order_id:x}{now:x}"
            if not CLIENT_ID_RE.match(cid):
                raise binance_error(
                    -1100,
                    "Illegal characters found in parameter 'newClientOrderId'; legal range is '^[\\.A-Z\\:/a-z0-9_-]{1,36}$'.",
                )
            try:
                order = trading.engine.place(acc, market, side, otype, qty, price, cid, now)
            except Reject as r:
                code, msg = _REJECT_ANSWERS.get(r.kind, (-2010, "Market is closed."))
                raise binance_error(code, msg) from None
            body = order_body(order)
            body["transactTime"] = now
            resp_type = p.get("newOrderRespType") or ("FULL" if otype == "market" else "ACK")
            if resp_type == "FULL":
                body["fills"] = [
                    {
                        "price": fixed(t.price),
                        "qty": fixed(t.qty),
                        "commission": fixed(round(t.fee, 10)),
                        "commissionAsset": t.fee_asset,
                        "tradeId": t.trade_id,
                    }
                    for t in acc.trades_from(order.symbol_id, now)  # placed now: no trade before
                    if t.order_id == order.order_id
                ]
            return Response(200, body)

    def cancel_order(self, req: Request) -> Response:
        with self.state.lock:
            trading, acc, now = self._begin(req)
            p = req.params()
            market = symbol_market(self.state, p)
            assert market is not None
            order = _find_order(acc, market, p, unknown=(-2011, "Unknown order sent."))
            if not order.is_open:
                raise binance_error(-2011, "Unknown order sent.")
            trading.engine.cancel(acc, market, order, now)
            body = order_body(order)
            body.update(origClientOrderId=order.client_order_id, transactTime=now)
            return Response(200, body)

    def query_order(self, req: Request) -> Response:
        with self.state.lock:
            _, acc, _ = self._begin(req)
            p = req.params()
            market = symbol_market(self.state, p)
            assert market is not None
            return Response(
                200, order_body(_find_order(acc, market, p, unknown=(-2013, "Order does not exist.")))
            )

    def open_orders(self, req: Request) -> Response:
        with self.state.lock:
            _, acc, _ = self._begin(req)
            market = symbol_market(self.state, req.params(), required=False)
            orders = acc.open_orders(market.symbol_id if market else None)
            return Response(200, [order_body(o) for o in sorted(orders, key=lambda o: o.order_id)])

    def all_orders(self, req: Request) -> Response:
        with self.state.lock:
            _, acc, _ = self._begin(req)
            p = req.params()
            market = symbol_market(self.state, p)
            assert market is not None
            start, end, limit = _range(p, 500)
            from_id = _int(p, "orderId", 0) or 0
            orders = [
                o
                for o in sorted(acc.orders.values(), key=lambda o: o.order_id)
                if o.symbol_id == market.symbol_id and o.order_id >= from_id and start <= o.created_ms <= end
            ]
            # With orderId: the first `limit` from it; without: the most recent `limit`.
            chosen = orders[:limit] if from_id else orders[-limit:]
            return Response(200, [order_body(o) for o in chosen])

    def my_trades(self, req: Request) -> Response:
        with self.state.lock:
            _, acc, _ = self._begin(req)
            p = req.params()
            market = symbol_market(self.state, p)
            assert market is not None
            start, end, order_id, from_id = _trade_query(p)
            limit = _range(p, 500)[2]
            trades = [
                t
                for t in acc.trades_from(market.symbol_id, start if start is not None else 0)
                if (end is None or t.ts_ms <= end)
                and (from_id is None or t.trade_id >= from_id)
                and (order_id is None or t.order_id == order_id)
            ]
            # From a start (time or id): the oldest `limit` after it; otherwise the most recent.
            forward = start is not None and not ("endTime" in p and "startTime" not in p)
            trades = trades[:limit] if (forward or from_id is not None) else trades[-limit:]
            return Response(200, [trade_body(t) for t in trades])


# GET /api/v3/myTrades, binance-spot-api-docs rest-api.md "Account trade list (USER_DATA)":
#   "If `fromId` is set, it will get trades >= that `fromId`. Otherwise most recent trades are returned."
#   "The time between `startTime` and `endTime` can't be longer than 24 hours."
#   "These are the supported combinations of all parameters: symbol / symbol + orderId /
#    symbol + startTime / symbol + endTime / symbol + fromId / symbol + startTime + endTime /
#    symbol + orderId + fromId";  limit "Default: 500; Maximum: 1000."
# errors.md: -1127 MORE_THAN_XX_HOURS "More than %s hours between startTime and endTime." (the message
# Binance sends, as reported in c9s/bbgo#423); -1128 "Combination of optional parameters invalid."
# The docs do not say what `symbol + startTime` (or `+ endTime`) alone covers. The emulator applies
# the 24-hour rule to it, [startTime, startTime + 24 h] (or [endTime - 24 h, endTime]): the strict
# reading, so a client that relies on one unbounded `since` query fails here instead of in production.
TRADES_WINDOW_MS = 24 * 3_600_000


def _trade_query(p: dict[str, str]) -> tuple[int | None, int | None, int | None, int | None]:
    """startTime, endTime, orderId, fromId of a myTrades query, with Binance's rules applied."""
    start, end = _int(p, "startTime"), _int(p, "endTime")
    order_id, from_id = _int(p, "orderId"), _int(p, "fromId")
    timed = start is not None or end is not None
    if timed and (from_id is not None or order_id is not None):
        raise binance_error(-1128, "Combination of optional parameters invalid.")
    if start is not None and end is not None:
        if end - start > TRADES_WINDOW_MS:
            raise binance_error(-1127, "More than 24 hours between startTime and endTime.")
    elif start is not None:
        end = start + TRADES_WINDOW_MS
    elif end is not None:
        start = max(0, end - TRADES_WINDOW_MS)
    return start, end, order_id, from_id


def _order_params(p: dict[str, str]) -> tuple[str, str, float, float | None]:
    side = (p.get("side") or "").upper()
    if side not in ("BUY", "SELL"):
        raise (
            _mandatory("side")
            if not side
            else binance_error(-1100, "Illegal characters found in parameter 'side'.")
        )
    otype = (p.get("type") or "").upper()
    if otype not in ("LIMIT", "MARKET"):
        raise _mandatory("type") if not otype else binance_error(-1116, "Invalid orderType.")
    if otype == "LIMIT" and (p.get("timeInForce") or "GTC").upper() != "GTC":
        raise binance_error(-1115, "Invalid timeInForce.")
    qty = _float(p, "quantity")
    if qty is None:
        raise _mandatory("quantity")
    price = _float(p, "price")
    if otype == "LIMIT" and price is None:
        raise _mandatory("price")
    return side.lower(), otype.lower(), qty, price if otype == "LIMIT" else None


def _float(p: dict[str, str], name: str) -> float | None:
    raw = p.get(name)
    if raw is None or raw == "":
        return None
    try:
        return float(raw)
    except ValueError:
        raise binance_error(
            -1100,
            f"Illegal characters found in parameter '{name}'; legal range is '^([0-9]{{1,20}})(\\.[0-9]{{1,20}})?$'.",
        ) from None


def _find_order(
    acc: Account, market: EmulatorMarket, p: dict[str, str], unknown: tuple[int, str]
) -> SimOrder:
    oid = _int(p, "orderId")
    cid = p.get("origClientOrderId")
    if oid is None and not cid:
        raise binance_error(
            -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!"
        )
    order = acc.orders.get(oid) if oid is not None else acc.order_by_client_id(cid or "")
    if order is None or order.symbol_id != market.symbol_id or (cid and order.client_order_id != cid):
        raise binance_error(*unknown)
    return order


def _range(p: dict[str, str], default_limit: int) -> tuple[int, int, int]:
    start = _int(p, "startTime", 0) or 0
    end = _int(p, "endTime", 2**62) or 2**62
    limit = _int(p, "limit", default_limit) or default_limit
    return start, end, max(1, min(limit, 1000))


def register_binance_trading_routes(router: Router, state: EmulatorState) -> None:
    """Binance spot account and order endpoints (weights as Binance documents them)."""
    api = BinanceTrading(state)
    v = {"venue": VENUE, "signed": True}
    router.get("/api/v3/account", api.account, weight=20, **v)
    router.post("/api/v3/order", api.new_order, weight=1, **v)
    router.delete("/api/v3/order", api.cancel_order, weight=1, **v)
    router.get("/api/v3/order", api.query_order, weight=4, **v)
    router.get("/api/v3/openOrders", api.open_orders, weight=6, **v)
    router.get("/api/v3/allOrders", api.all_orders, weight=20, **v)
    router.get("/api/v3/myTrades", api.my_trades, weight=20, **v)
