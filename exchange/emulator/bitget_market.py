"""Bitget v2 spot market data with the real envelope `{"code":"00000","msg":"success",...,"data":...}`.

Candles, as ccxt 4.5.90 asks for them (`bitget.fetch_ohlcv`): `candles` (limit default 100, max
1000) and `history-candles` (max 200) both return the **latest** `limit` candles with
`startTime <= ts < endTime`, oldest first. ccxt aligns its requests on endTime and, for any `since`
older than the recent window *by its local wall clock*, uses history-candles with
`endTime = since + limit * tf`; so a paging client must ask for at most 200 candles per call or it
skips data (the downloader does). Granularities: 1min..30min, 1h, 4h, 6h, 12h, 1day, 3day, 1week,
1M and the UTC-anchored 6Hutc, 12Hutc, 1Dutc, 3Dutc, 1Wutc, 1Mutc (what ccxt sends for 6h and up);
3day and the month ones are answered with a parameter error since the emulator keeps no such grid.
"""

from __future__ import annotations

from typing import Any

from exchange.emulator.markets import EmulatorMarket
from exchange.emulator.quotes import book, stats_24h
from exchange.emulator.router import HttpError, Request, Response, Router
from exchange.emulator.state import EmulatorState
from exchange.emulator.wire import candle_fields, decimals_of, int_param, num

VENUE = "bitget"
CANDLES_DEFAULT_LIMIT, CANDLES_MAX_LIMIT, HISTORY_MAX_LIMIT = 100, 1000, 200
BOOK_MAX_LIMIT = 150

GRANULARITY_TO_TF = {
    "1min": "1m",
    "3min": "3m",
    "5min": "5m",
    "15min": "15m",
    "30min": "30m",
    "1h": "1h",
    "4h": "4h",
    "6h": "6h",
    "12h": "12h",
    "1day": "1d",
    "1week": "1w",
    "6Hutc": "6h",
    "12Hutc": "12h",
    "1Dutc": "1d",
    "1Wutc": "1w",
}


def ok(state: EmulatorState, data: Any) -> Response:
    return Response(200, {"code": "00000", "msg": "success", "requestTime": state.now_ms(), "data": data})


def bitget_error(state: EmulatorState, code: str, msg: str, status: int = 400) -> HttpError:
    return HttpError(status, {"code": code, "msg": msg, "requestTime": state.now_ms(), "data": None})


def require_market(state: EmulatorState, params: dict[str, str]) -> EmulatorMarket:
    symbol = params.get("symbol")
    if not symbol:
        raise bitget_error(state, "40019", "Parameter symbol cannot be empty")
    market = state.market(symbol)
    if market is None:
        raise bitget_error(state, "40034", f"Parameter {symbol} does not exist")
    return market


def symbol_body(m: EmulatorMarket) -> dict[str, Any]:
    r = m.rules
    return {
        "symbol": m.symbol_id,
        "baseCoin": m.base,
        "quoteCoin": m.quote,
        "minTradeAmount": num(r.min_qty),
        "maxTradeAmount": "10000000000",
        "takerFeeRate": num(r.taker_fee),
        "makerFeeRate": num(r.maker_fee),
        # Bitget publishes precision as a count of decimals: the tick and lot must be powers of ten.
        "pricePrecision": str(decimals_of(r.tick_size)),
        "quantityPrecision": str(decimals_of(r.lot_size)),
        "quotePrecision": str(decimals_of(r.tick_size) + decimals_of(r.lot_size)),
        "status": "online" if m.status == "TRADING" else "offline",
        "minTradeUSDT": num(r.min_notional),
        "buyLimitPriceRatio": "0.05",
        "sellLimitPriceRatio": "0.05",
        "areaSymbol": "no",
        "orderQuantity": "200",
        "openTime": "",
        "offTime": "",
    }


def candle_rows(rows: Any) -> list[list[str]]:
    """Bitget's 8 string fields: ts, o, h, l, c, base volume, usdt volume, quote volume."""
    return [[str(ts), o, h, lo, c, v, q, q] for ts, o, h, lo, c, v, q in candle_fields(rows)]


def register_bitget_market_routes(router: Router, state: EmulatorState) -> None:
    """Bitget v2 spot public endpoints, plus the probes ccxt makes (margin, contracts, UTA settings)."""

    def server_time(req: Request) -> Response:
        return ok(state, {"serverTime": str(state.now_ms())})

    def symbols(req: Request) -> Response:
        if req.query.get("symbol"):
            return ok(state, [symbol_body(require_market(state, req.query))])
        return ok(state, [symbol_body(state.markets[k]) for k in sorted(state.markets)])

    def coins(req: Request) -> Response:
        names = sorted({c for m in state.markets.values() for c in (m.base, m.quote)})
        if req.query.get("coin"):
            names = [c for c in names if c == req.query["coin"].upper()]
        return ok(state, [_coin_body(i, c) for i, c in enumerate(names, start=1)])

    def candles_recent(req: Request) -> Response:
        return _candles(state, req, CANDLES_MAX_LIMIT)

    def candles_history(req: Request) -> Response:
        if not req.query.get("endTime"):
            raise bitget_error(state, "40019", "Parameter endTime cannot be empty")
        return _candles(state, req, HISTORY_MAX_LIMIT)

    def tickers(req: Request) -> Response:
        markets = (
            [require_market(state, req.query)] if req.query.get("symbol") else list(state.markets.values())
        )
        return ok(state, [t for m in markets if (t := _ticker_body(state, m)) is not None])

    def orderbook(req: Request) -> Response:
        market = require_market(state, req.query)
        limit = int_param(
            req.query, "limit", lambda: bitget_error(state, "40017", "Parameter verification failed"), 150
        )
        bids, asks = book(state, market.symbol_id, max(1, min(limit or 150, BOOK_MAX_LIMIT)))
        return ok(
            state,
            {
                "asks": [[num(p), num(q)] for p, q in asks],
                "bids": [[num(p), num(q)] for p, q in bids],
                "ts": str(state.now_ms()),
            },
        )

    def empty_list(req: Request) -> Response:
        return ok(state, [])

    def uta_settings(req: Request) -> Response:
        # A classic (non-UTA) account: ccxt swallows this error and keeps the v2 endpoints.
        raise bitget_error(
            state, "40084", "You are in Classic Account mode, unified account endpoints are unavailable"
        )

    v = {"venue": VENUE}
    router.get("/api/v2/public/time", server_time, **v)
    router.get("/api/v2/spot/public/symbols", symbols, **v)
    router.get("/api/v2/spot/public/coins", coins, **v)
    router.get("/api/v2/spot/market/candles", candles_recent, **v)
    router.get("/api/v2/spot/market/history-candles", candles_history, **v)
    router.get("/api/v2/spot/market/tickers", tickers, **v)
    router.get("/api/v2/spot/market/orderbook", orderbook, **v)
    router.get("/api/v2/margin/currencies", empty_list, **v)
    # Futures contracts, probed by a ccxt client left on its default market types.
    router.get("/api/v2/mix/market/contracts", empty_list, **v)
    router.get("/api/v3/account/settings", uta_settings, **v)


def _candles(state: EmulatorState, req: Request, max_limit: int) -> Response:
    market = require_market(state, req.query)
    granularity = req.query.get("granularity", "")
    tf = GRANULARITY_TO_TF.get(granularity)
    if tf is None:
        raise bitget_error(state, "40017", f"Parameter verification failed: granularity {granularity!r}")

    def bad() -> HttpError:
        return bitget_error(state, "40017", "Parameter verification failed")

    start = int_param(req.query, "startTime", bad)
    end = int_param(req.query, "endTime", bad)
    limit = int_param(req.query, "limit", bad, CANDLES_DEFAULT_LIMIT) or CANDLES_DEFAULT_LIMIT
    limit = max(1, min(limit, max_limit))
    # endTime is exclusive ("data before this timestamp"); the window aligns on it.
    end_incl = None if end is None else end - 1
    rows = state.candles.window(market.symbol_id, tf, state.now_ms(), start, end_incl, limit, newest=True)
    return ok(state, candle_rows(rows))


def _ticker_body(state: EmulatorState, m: EmulatorMarket) -> dict[str, Any] | None:
    s = stats_24h(state, m.symbol_id)
    if s is None:
        return None
    change = f"{s.change / s.open:.5f}" if s.open else "0"
    return {
        "symbol": m.symbol_id,
        "high24h": num(s.high),
        "open": num(s.open),
        "low24h": num(s.low),
        "lastPr": num(s.last),
        "quoteVolume": num(round(s.quote_volume, 8)),
        "baseVolume": num(round(s.volume, 8)),
        "usdtVolume": num(round(s.quote_volume, 8)),
        "ts": str(s.close_ms),
        "bidPr": num(s.bid),
        "askPr": num(s.ask),
        "bidSz": "1",
        "askSz": "1",
        "openUtc": num(s.open),
        "changeUtc24h": change,
        "change24h": change,
    }


def _coin_body(coin_id: int, coin: str) -> dict[str, Any]:
    return {
        "coinId": str(coin_id),
        "coin": coin,
        "transfer": "true",
        "chains": [
            {
                "chain": coin,
                "needTag": "false",
                "withdrawable": "true",
                "rechargeable": "true",
                "withdrawFee": "0",
                "extraWithDrawFee": "0",
                "depositConfirm": "1",
                "withdrawConfirm": "1",
                "minDepositAmount": "0",
                "minWithdrawAmount": "0",
                "browserUrl": "",
                "contractAddress": "",
                "withdrawStep": "0",
                "withdrawMinScale": "8",
                "congestion": "normal",
            }
        ],
    }
