"""Trading quirks of each venue as data (`TradingQuirks`); the adapter reads them, nothing branches
on the exchange name. Connection quirks (URLs, ccxt options, candle paging) are in
`exchange.ccxt_client.VENUES`."""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import ConfigError


@dataclass(frozen=True)
class TradingQuirks:
    name: str
    # The order-create / cancel answer is a whole order (Binance) or only its ids (Bitget): then the
    # adapter fetches the order to return its real state.
    create_returns_order: bool
    cancel_returns_order: bool
    # Market buys are sized in quote currency (Bitget): the adapter sends amount * reference price.
    market_buy_in_quote: bool
    # Texts of the venue's answer when a client order id is reused while its order exists.
    duplicate_client_id_markers: tuple[str, ...]
    # What the user should do when the venue rejects the key (shown with AuthenticationError).
    auth_fix: str


def quirks(name: str) -> TradingQuirks:
    from exchange.venues.binance import BINANCE
    from exchange.venues.bitget import BITGET

    table = {q.name: q for q in (BINANCE, BITGET)}
    if name not in table:
        raise ConfigError(
            f"no trading support for exchange {name!r}", f"supported: {', '.join(sorted(table))}"
        )
    return table[name]
