"""Binance spot: what its trading API does differently, as data."""

from exchange.venues import TradingQuirks

BINANCE = TradingQuirks(
    name="binance",
    # POST/DELETE /api/v3/order answer with the full order (newOrderRespType FULL).
    create_returns_order=True,
    cancel_returns_order=True,
    market_buy_in_quote=False,
    # -2010 "Duplicate order sent." (a newClientOrderId already used by an open order).
    duplicate_client_id_markers=("Duplicate order sent",),
    auth_fix="check the API key and secret, that the key has spot trading enabled, and its IP whitelist",
)
