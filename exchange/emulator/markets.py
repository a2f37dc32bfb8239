"""Market rules the emulator publishes (tick, lot, min quantity, min notional) per symbol.

Defaults mirror the real Binance spot filters for the common pairs; any other symbol gets rules
derived from its price level (about 6 significant digits of price, and a lot small enough that
the minimum notional buys a handful of lots). A small TOML file can override any of them:

    [markets.BTCUSDT]
    tick_size = 0.01
    lot_size = 0.00001
    min_qty = 0.00001
    min_notional = 5.0
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from core.market_rules import MarketRules

QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "BTC", "ETH", "BNB", "EUR", "TRY")

# Binance spot filters (PRICE_FILTER tick, LOT_SIZE step = minQty, NOTIONAL min) as published.
DEFAULT_RULES: dict[str, tuple[float, float, float]] = {
    "BTCUSDT": (0.01, 0.00001, 5.0),
    "ETHUSDT": (0.01, 0.0001, 5.0),
    "BNBUSDT": (0.01, 0.001, 5.0),
    "SOLUSDT": (0.01, 0.001, 5.0),
    "XRPUSDT": (0.0001, 0.1, 5.0),
    "ADAUSDT": (0.0001, 0.1, 5.0),
    "DOGEUSDT": (0.00001, 1.0, 5.0),
    "LTCUSDT": (0.01, 0.001, 5.0),
}


@dataclass(frozen=True)
class EmulatorMarket:
    """One spot market as both venues show it; `rules.symbol` is the venue id ("BTCUSDT")."""

    base: str
    quote: str
    rules: MarketRules
    status: str = "TRADING"

    @property
    def symbol_id(self) -> str:
        return self.rules.symbol

    @property
    def pair(self) -> str:
        return f"{self.base}/{self.quote}"


def split_pair(pair: str) -> tuple[str, str]:
    """'BTC/USDT' or 'BTC_USDT' or 'BTCUSDT' -> ('BTC', 'USDT')."""
    for sep in ("/", "_", "-"):
        if sep in pair:
            base, quote = pair.split(sep, 1)
            return base.upper(), quote.upper()
    up = pair.upper()
    for q in QUOTES:
        if up.endswith(q) and len(up) > len(q):
            return up[: -len(q)], q
    raise ConfigError(
        f"cannot split {pair!r} into base and quote", "write pairs as BASE/QUOTE, e.g. BTC/USDT"
    )


def derived_rules(symbol_id: str, price: float | None) -> tuple[float, float, float]:
    if symbol_id in DEFAULT_RULES:
        return DEFAULT_RULES[symbol_id]
    if not price or price <= 0:
        return (0.01, 0.001, 5.0)
    tick = 10.0 ** (math.floor(math.log10(price)) - 5)
    lot = 10.0 ** (math.floor(math.log10(5.0 / price)) - 1)
    return (min(tick, 1.0), min(lot, 1.0), 5.0)


def make_market(
    pair: str, price: float | None = None, overrides: dict[str, Any] | None = None
) -> EmulatorMarket:
    base, quote = split_pair(pair)
    tick, lot, min_notional = derived_rules(base + quote, price)
    rules = MarketRules(
        symbol=base + quote, tick_size=tick, lot_size=lot, min_qty=lot, min_notional=min_notional
    )
    market = EmulatorMarket(base, quote, rules)
    if overrides:
        allowed = {"tick_size", "lot_size", "min_qty", "min_notional", "maker_fee", "taker_fee"}
        unknown = set(overrides) - allowed - {"status"}
        if unknown:
            raise ConfigError(
                f"emulator markets.{base + quote}: unknown keys {sorted(unknown)}",
                f"allowed: {', '.join(sorted(allowed | {'status'}))}",
            )
        rule_kw: dict[str, Any] = {k: float(v) for k, v in overrides.items() if k in allowed}
        market = EmulatorMarket(
            base, quote, replace(rules, **rule_kw), str(overrides.get("status", "TRADING"))
        )
    return market


def load_market_overrides(path: str | Path | None) -> dict[str, dict[str, Any]]:
    """`{symbol_id: {key: value}}` from the `[markets.<SYMBOL>]` tables of a TOML file."""
    if path is None:
        return {}
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{p}: emulator markets file not found", "pass an existing TOML file") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(
            f"{p}: not valid TOML: {e}", "fix the syntax at the line and column given"
        ) from None
    markets = raw.get("markets", {})
    if not isinstance(markets, dict) or not all(isinstance(v, dict) for v in markets.values()):
        raise ConfigError(f"{p}: expected markets.<SYMBOL> tables", "see exchange/emulator/markets.py")
    return {k.upper().replace("/", "").replace("_", ""): v for k, v in markets.items()}
