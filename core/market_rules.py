"""Exchange rules in one place: tick size, lot size, minimum quantity, minimum notional, fees.

The backtester, the emulator, the paper venue and the live runner all round and check orders
with these functions, so a backtest never fills an order the exchange would reject. The scalar
helpers are numba-compilable (plain float arithmetic, no Python objects) and are wrapped with
`numba.njit` by the strategy engine; `MarketRules` is the typed form everything else passes around.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Relative slack for float division, so 0.3 / 0.1 counts as 3 steps and not 2.9999999999999996.
_EPS = 1e-9

# Order rejection reasons (numba-friendly ints; index into REJECT_REASONS).
OK = 0
BELOW_MIN_QTY = 1
BELOW_MIN_NOTIONAL = 2
NON_POSITIVE = 3
REJECT_REASONS = ("ok", "amount below minimum quantity", "value below minimum notional", "price or amount not positive")

# Venue defaults in percent (spot, lowest tier, no fee-token discount). Configurable per run.
DEFAULT_FEES_PCT = {"binance": (0.1, 0.1), "bitget": (0.1, 0.1)}


def floor_to_step(x: float, step: float) -> float:
    """Largest multiple of `step` not above `x` (amounts are truncated, as the exchanges do)."""
    return math.floor(x / step + _EPS) * step


def ceil_to_step(x: float, step: float) -> float:
    return math.ceil(x / step - _EPS) * step


def round_price(price: float, tick: float, is_buy: bool) -> float:
    """Buys round down and sells round up, so rounding never makes a limit order more aggressive."""
    return floor_to_step(price, tick) if is_buy else ceil_to_step(price, tick)


def check_order(price: float, amount: float, min_qty: float, min_notional: float) -> int:
    """OK, or the reason code the exchange would reject the (already rounded) order with."""
    if price <= 0.0 or amount <= 0.0:
        return NON_POSITIVE
    if amount < min_qty * (1 - _EPS):
        return BELOW_MIN_QTY
    if price * amount < min_notional * (1 - _EPS):
        return BELOW_MIN_NOTIONAL
    return OK


@dataclass(frozen=True)
class MarketRules:
    """One market's trading rules, as the venue publishes them (fees as fractions, not percent)."""

    symbol: str
    tick_size: float
    lot_size: float
    min_qty: float
    min_notional: float
    maker_fee: float = 0.001
    taker_fee: float = 0.001

    def round_price(self, price: float, is_buy: bool) -> float:
        return _clean(round_price(price, self.tick_size, is_buy), self.tick_size)

    def round_amount(self, amount: float) -> float:
        return _clean(floor_to_step(amount, self.lot_size), self.lot_size)

    def check(self, price: float, amount: float) -> int:
        return check_order(price, amount, self.min_qty, self.min_notional)

    def reject_reason(self, price: float, amount: float) -> str | None:
        code = self.check(price, amount)
        return None if code == OK else REJECT_REASONS[code]

    def min_order_quote(self, price: float) -> float:
        """Smallest order value (quote) that passes both min_qty and min_notional at `price`."""
        qty = max(self.min_qty, ceil_to_step(self.min_notional / price, self.lot_size))
        return qty * price


def _clean(x: float, step: float) -> float:
    """Drop float noise (0.30000000000000004 -> 0.3) by rounding to the step's decimals."""
    decimals = max(0, -int(math.floor(math.log10(step))) + 2) if step > 0 else 12
    return round(x, decimals)
