"""Bitget v2 spot: what its trading API does differently, as data."""

from exchange.venues import TradingQuirks

BITGET = TradingQuirks(
    name="bitget",
    # place-order and cancel-order answer only {orderId, clientOid}.
    create_returns_order=False,
    cancel_returns_order=False,
    # A market buy's `size` is the quote amount to spend.
    market_buy_in_quote=True,
    duplicate_client_id_markers=("Duplicate clientOid", "clientOid duplicate"),
    auth_fix="check the API key, secret and passphrase, the key's trade permission, and its IP whitelist",
)
