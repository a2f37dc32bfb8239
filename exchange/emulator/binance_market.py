"""Binance spot market data: /api/v3 public endpoints with the real response shapes.

Also answers the endpoints ccxt probes with default options (futures exchangeInfo, sapi currency
and margin lists) with empty lists, so an unconfigured ccxt client loads markets too. Weights are
the ones Binance documents; a rate-limit middleware reads them from `request.route.weight`.
"""

from __future__ import annotations

import json
from typing import Any

from core.timeframes import SUPPORTED_TIMEFRAMES, timeframe_ms
from exchange.emulator.markets import EmulatorMarket
from exchange.emulator.quotes import book, stats_24h
from exchange.emulator.router import HttpError, Request, Response, Router
from exchange.emulator.state import EmulatorState
from exchange.emulator.wire import candle_fields, fixed, int_param, num

VENUE = "binance"
KLINES_DEFAULT_LIMIT, KLINES_MAX_LIMIT = 500, 1000
DEPTH_DEFAULT_LIMIT, DEPTH_MAX_LIMIT = 100, 5000
ORDER_TYPES = [
    "LIMIT",
    "LIMIT_MAKER",
    "MARKET",
    "STOP_LOSS",
    "STOP_LOSS_LIMIT",
    "TAKE_PROFIT",
    "TAKE_PROFIT_LIMIT",
]
RATE_LIMITS = [
    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
    {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
    {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
]


def binance_error(code: int, msg: str, status: int = 400) -> HttpError:
    return HttpError(status, {"code": code, "msg": msg})


def bad_param(name: str) -> HttpError:
    return binance_error(
        -1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'."
    )


def symbol_market(
    state: EmulatorState, params: dict[str, str], required: bool = True
) -> EmulatorMarket | None:
    symbol = params.get("symbol")
    if not symbol:
        if required:
            raise binance_error(
                -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."
            )
        return None
    market = state.market(symbol)
    if market is None:
        raise binance_error(-1121, "Invalid symbol.")
    return market


def symbols_param(state: EmulatorState, params: dict[str, str]) -> list[EmulatorMarket]:
    """`symbol=X`, `symbols=["X","Y"]`, or every market."""
    one = symbol_market(state, params, required=False)
    if one is not None:
        return [one]
    if params.get("symbols"):
        try:
            ids = json.loads(params["symbols"])
        except ValueError:
            raise binance_error(-1100, "Illegal characters found in parameter 'symbols'.") from None
        markets = [state.market(str(i)) for i in ids]
        if any(m is None for m in markets):
            raise binance_error(-1121, "Invalid symbol.")
        return [m for m in markets if m is not None]
    return [state.markets[k] for k in sorted(state.markets)]


def exchange_info_symbol(m: EmulatorMarket) -> dict[str, Any]:
    r = m.rules
    return {
        "symbol": m.symbol_id,
        "status": m.status,
        "baseAsset": m.base,
        "baseAssetPrecision": 8,
        "quoteAsset": m.quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": ORDER_TYPES,
        "icebergAllowed": True,
        "ocoAllowed": True,
        "otoAllowed": True,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": True,
        "cancelReplaceAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": fixed(r.tick_size),
                "maxPrice": fixed(1_000_000.0),
                "tickSize": fixed(r.tick_size),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": fixed(r.min_qty),
                "maxQty": fixed(9_000_000.0),
                "stepSize": fixed(r.lot_size),
            },
            {"filterType": "ICEBERG_PARTS", "limit": 10},
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": fixed(0.0),
                "maxQty": fixed(9_000_000.0),
                "stepSize": fixed(0.0),
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": fixed(r.min_notional),
                "applyMinToMarket": True,
                "maxNotional": fixed(9_000_000.0),
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5},
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }


def kline_rows(rows: Any, tf_ms: int) -> list[list[Any]]:
    """The 12-field rows of /api/v3/klines; trade count and taker volumes are not stored (0)."""
    return [
        [ts, o, h, lo, c, v, ts + tf_ms - 1, q, 0, "0", "0", "0"]
        for ts, o, h, lo, c, v, q in candle_fields(rows)
    ]


def register_binance_market_routes(router: Router, state: EmulatorState) -> None:
    """Binance spot public market-data endpoints plus the probes ccxt makes with default options."""

    def ping(req: Request) -> Response:
        return Response(200, {})

    def server_time(req: Request) -> Response:
        return Response(200, {"serverTime": state.now_ms()})

    def exchange_info(req: Request) -> Response:
        markets = symbols_param(state, req.query)
        return Response(
            200,
            {
                "timezone": "UTC",
                "serverTime": state.now_ms(),
                "rateLimits": RATE_LIMITS,
                "exchangeFilters": [],
                "symbols": [exchange_info_symbol(m) for m in markets],
            },
        )

    def klines(req: Request) -> Response:
        market = symbol_market(state, req.query)
        assert market is not None
        interval = req.query.get("interval")
        if not interval:
            raise binance_error(
                -1102, "Mandatory parameter 'interval' was not sent, was empty/null, or malformed."
            )
        if interval not in SUPPORTED_TIMEFRAMES:
            raise binance_error(-1120, "Invalid interval.")
        start = int_param(req.query, "startTime", lambda: bad_param("startTime"))
        end = int_param(req.query, "endTime", lambda: bad_param("endTime"))
        limit = (
            int_param(req.query, "limit", lambda: bad_param("limit"), KLINES_DEFAULT_LIMIT)
            or KLINES_DEFAULT_LIMIT
        )
        if start is not None and end is not None and start > end:
            raise binance_error(-1023, "Start time is greater than end time.")
        limit = max(1, min(limit, KLINES_MAX_LIMIT))
        rows = state.candles.window(
            market.symbol_id, interval, state.now_ms(), start, end, limit, newest=start is None
        )
        tf_ms = timeframe_ms(interval)
        return Response(200, kline_rows(rows, tf_ms))

    def ticker_24hr(req: Request) -> Response:
        out = [t for m in symbols_param(state, req.query) if (t := _ticker_body(state, m)) is not None]
        return Response(200, out[0] if "symbol" in req.query and out else out)

    def ticker_price(req: Request) -> Response:
        out = []
        for m in symbols_param(state, req.query):
            last = state.candles.last_price(m.symbol_id, state.now_ms())
            if last is not None:
                out.append({"symbol": m.symbol_id, "price": num(last)})
        return Response(200, out[0] if "symbol" in req.query and out else out)

    def book_ticker(req: Request) -> Response:
        out = []
        for m in symbols_param(state, req.query):
            bids, asks = book(state, m.symbol_id, 1)
            if bids and asks:
                out.append(
                    {
                        "symbol": m.symbol_id,
                        "bidPrice": num(bids[0][0]),
                        "bidQty": num(bids[0][1]),
                        "askPrice": num(asks[0][0]),
                        "askQty": num(asks[0][1]),
                    }
                )
        return Response(200, out[0] if "symbol" in req.query and out else out)

    def depth(req: Request) -> Response:
        market = symbol_market(state, req.query)
        assert market is not None
        limit = (
            int_param(req.query, "limit", lambda: bad_param("limit"), DEPTH_DEFAULT_LIMIT)
            or DEPTH_DEFAULT_LIMIT
        )
        bids, asks = book(state, market.symbol_id, max(1, min(limit, DEPTH_MAX_LIMIT)))
        return Response(
            200,
            {
                "lastUpdateId": state.now_ms(),
                "bids": [[num(p), num(q)] for p, q in bids],
                "asks": [[num(p), num(q)] for p, q in asks],
            },
        )

    def empty_list(req: Request) -> Response:
        return Response(200, [])

    def no_futures(req: Request) -> Response:
        return Response(
            200, {"timezone": "UTC", "serverTime": state.now_ms(), "rateLimits": [], "symbols": []}
        )

    v = {"venue": VENUE}
    router.get("/api/v3/ping", ping, weight=1, **v)
    router.get("/api/v3/time", server_time, weight=1, **v)
    router.get("/api/v3/exchangeInfo", exchange_info, weight=20, **v)
    router.get("/api/v3/klines", klines, weight=2, **v)
    router.get("/api/v3/uiKlines", klines, weight=2, **v)
    router.get("/api/v3/ticker/24hr", ticker_24hr, weight=2, **v)
    router.get("/api/v3/ticker/price", ticker_price, weight=2, **v)
    router.get("/api/v3/ticker/bookTicker", book_ticker, weight=2, **v)
    router.get("/api/v3/depth", depth, weight=5, **v)
    # Probes of an unconfigured ccxt client: futures markets and sapi currency/margin lists.
    router.get("/fapi/v1/exchangeInfo", no_futures, weight=1, **v)
    router.get("/dapi/v1/exchangeInfo", no_futures, weight=1, **v)
    for path in (
        "/sapi/v1/capital/config/getall",
        "/sapi/v1/margin/allPairs",
        "/sapi/v1/margin/isolated/allPairs",
    ):
        router.get(path, empty_list, weight=10, **v)


def _ticker_body(state: EmulatorState, m: EmulatorMarket) -> dict[str, Any] | None:
    s = stats_24h(state, m.symbol_id)
    if s is None:
        return None
    return {
        "symbol": m.symbol_id,
        "priceChange": num(round(s.change, 10)),
        "priceChangePercent": f"{s.change_pct:.3f}",
        "weightedAvgPrice": num(round(s.vwap, 8)),
        "prevClosePrice": num(s.open),
        "lastPrice": num(s.last),
        "lastQty": "0",
        "bidPrice": num(s.bid),
        "bidQty": "1",
        "askPrice": num(s.ask),
        "askQty": "1",
        "openPrice": num(s.open),
        "highPrice": num(s.high),
        "lowPrice": num(s.low),
        "volume": num(round(s.volume, 8)),
        "quoteVolume": num(round(s.quote_volume, 8)),
        "openTime": s.open_ms,
        "closeTime": s.close_ms,
        "firstId": -1,
        "lastId": -1,
        "count": 0,
    }
