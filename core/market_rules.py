"""Exchange rules in one place: tick size, lot size, minimum quantity, minimum notional, fees.

The backtester, the emulator, the paper venue and the live runner all round and check orders
with these functions, so a backtest never fills an order the exchange would reject. The scalar
helpers are numba-compiled (`cache=True`): the strategy engine calls them inside its njit code,
and Python callers use the very same functions (a dispatcher call costs well under a microsecond).
`MarketRules` is the typed form everything else passes around; `MarketRules.as_array()` is the
plain float64 vector the engine takes (indices `R_*`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba as nb
import numpy as np

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
# Minimum order value in quote (USDT) the venues enforce on spot.
DEFAULT_MIN_NOTIONAL = {"binance": 5.0, "bitget": 1.0}

# Indices of the rules vector the numba engine takes (MarketRules.as_array()).
R_TICK = 0
R_LOT = 1
R_MIN_QTY = 2
R_MIN_NOTIONAL = 3
R_MAKER_FEE = 4
R_TAKER_FEE = 5
R_TICK_DEC = 6  # decimals prices are cleaned to (step_decimals(tick)), cached for the hot paths
R_LOT_DEC = 7
N_RULES = 8


@nb.njit(cache=True)
def floor_to_step(x: float, step: float) -> float:
    """Largest multiple of `step` not above `x` (amounts are truncated, as the exchanges do)."""
    return math.floor(x / step + _EPS) * step


@nb.njit(cache=True)
def ceil_to_step(x: float, step: float) -> float:
    return math.ceil(x / step - _EPS) * step


@nb.njit(cache=True)
def round_price(price: float, tick: float, is_buy: bool) -> float:
    """Buys round down and sells round up, so rounding never makes a limit order more aggressive."""
    return floor_to_step(price, tick) if is_buy else ceil_to_step(price, tick)


@nb.njit(cache=True)
def check_order(price: float, amount: float, min_qty: float, min_notional: float) -> int:
    """OK, or the reason code the exchange would reject the (already rounded) order with."""
    if price <= 0.0 or amount <= 0.0:
        return NON_POSITIVE
    if amount < min_qty * (1 - _EPS):
        return BELOW_MIN_QTY
    if price * amount < min_notional * (1 - _EPS):
        return BELOW_MIN_NOTIONAL
    return OK


@nb.njit(cache=True)
def step_decimals(step: float) -> int:
    """Decimals that show a multiple of `step` exactly, plus two (12 for a zero step)."""
    if step <= 0.0:
        return 12
    decimals = -int(math.floor(math.log10(step))) + 2
    return decimals if decimals > 0 else 0


@nb.njit(cache=True)
def clean_to_step(x: float, step: float) -> float:
    """Drop float noise (0.30000000000000004 -> 0.3) by rounding to the step's decimals."""
    return round(x, step_decimals(step))


@nb.njit(cache=True)
def price_to_tick(price: float, tick: float, is_buy: bool) -> float:
    """The limit price the venue accepts: on the tick grid, never more aggressive, without float noise."""
    return clean_to_step(round_price(price, tick, is_buy), tick)


@nb.njit(cache=True)
def amount_to_lot(amount: float, lot: float) -> float:
    """The amount the venue accepts: truncated to the lot grid, without float noise."""
    return clean_to_step(floor_to_step(amount, lot), lot)


@nb.njit(cache=True)
def tick_price(price: float, rules: np.ndarray, is_buy: bool) -> float:
    """price_to_tick with a rules vector (its decimals cached): the same value, without a log10."""
    return round(round_price(price, rules[R_TICK], is_buy), int(rules[R_TICK_DEC]))


@nb.njit(cache=True)
def lot_amount(amount: float, rules: np.ndarray) -> float:
    """amount_to_lot with a rules vector (its decimals cached)."""
    return round(floor_to_step(amount, rules[R_LOT]), int(rules[R_LOT_DEC]))


@nb.njit(cache=True)
def check_rules(price: float, amount: float, rules: np.ndarray) -> int:
    """check_order with a rules vector (R_* indices)."""
    return check_order(price, amount, rules[R_MIN_QTY], rules[R_MIN_NOTIONAL])


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
        return float(price_to_tick(price, self.tick_size, is_buy))

    def round_amount(self, amount: float) -> float:
        return float(amount_to_lot(amount, self.lot_size))

    def check(self, price: float, amount: float) -> int:
        return int(check_order(price, amount, self.min_qty, self.min_notional))

    def reject_reason(self, price: float, amount: float) -> str | None:
        code = self.check(price, amount)
        return None if code == OK else REJECT_REASONS[code]

    def min_order_quote(self, price: float) -> float:
        """Smallest order value (quote) that passes both min_qty and min_notional at `price`."""
        qty = max(self.min_qty, ceil_to_step(self.min_notional / price, self.lot_size))
        return qty * price

    def min_entry_quote(self, price: float) -> float:
        """Smallest buy (quote) whose fill, after the fee taken in base and truncation to the lot,
        can still be sold at `price`: one lot of slack on top of the minimum order, grossed up by
        the (higher) fee. Grid levels and DCA orders below this are refused with this figure."""
        fee = max(self.maker_fee, self.taker_fee)
        return (self.min_order_quote(price) + self.lot_size * price) / (1.0 - fee)

    def as_array(self) -> np.ndarray:
        """The float64 vector the numba engine takes (R_* indices)."""
        out = np.empty(N_RULES, dtype=np.float64)
        out[R_TICK] = self.tick_size
        out[R_LOT] = self.lot_size
        out[R_MIN_QTY] = self.min_qty
        out[R_MIN_NOTIONAL] = self.min_notional
        out[R_MAKER_FEE] = self.maker_fee
        out[R_TAKER_FEE] = self.taker_fee
        out[R_TICK_DEC] = step_decimals(self.tick_size)
        out[R_LOT_DEC] = step_decimals(self.lot_size)
        return out


# Binance spot filters as published (PRICE_FILTER tickSize, LOT_SIZE stepSize/minQty) for the pairs
# the bundled and shared data cover. Backtests use these when no live market list is at hand; the
# live runner uses the venue's own. Bitget: its spot symbols list (pricePrecision, quantityPrecision).
_KNOWN: dict[tuple[str, str], tuple[float, float]] = {
    ("binance", "BTC/USDT"): (0.01, 0.00001),
    ("binance", "ETH/USDT"): (0.01, 0.0001),
    ("binance", "BNB/USDT"): (0.01, 0.001),
    ("binance", "SOL/USDT"): (0.01, 0.001),
    ("binance", "LTC/USDT"): (0.01, 0.001),
    ("binance", "XRP/USDT"): (0.0001, 0.1),
    ("binance", "ADA/USDT"): (0.0001, 0.1),
    ("binance", "DOGE/USDT"): (0.00001, 1.0),
    ("bitget", "BTC/USDT"): (0.01, 0.000001),
    ("bitget", "ETH/USDT"): (0.01, 0.0001),
}


def venue_fees(exchange: str, maker_fee_pct: float | None = None, taker_fee_pct: float | None = None) -> tuple[float, float]:
    """(maker, taker) as fractions: the overrides in percent where given, else the venue's default."""
    maker_pct, taker_pct = DEFAULT_FEES_PCT.get(exchange, (0.1, 0.1))
    maker = maker_pct if maker_fee_pct is None else maker_fee_pct
    taker = taker_pct if taker_fee_pct is None else taker_fee_pct
    return maker / 100.0, taker / 100.0


def default_rules(
    exchange: str,
    pair: str,
    price_hint: float,
    maker_fee_pct: float | None = None,
    taker_fee_pct: float | None = None,
) -> MarketRules:
    """Rules for offline backtests: the venue's published filters for known pairs, else a tick of
    seven significant digits (0.01 at 30,000) and a lot worth 0.1-1 quote units at `price_hint`."""
    if (exchange, pair) in _KNOWN:
        tick, lot = _KNOWN[(exchange, pair)]
    else:
        if not price_hint > 0:
            raise ValueError(f"price_hint must be > 0, got {price_hint}")
        mag = math.floor(math.log10(price_hint))
        tick, lot = 10.0 ** (mag - 6), 10.0 ** (-mag - 1)
    maker, taker = venue_fees(exchange, maker_fee_pct, taker_fee_pct)
    return MarketRules(pair, tick, lot, lot, DEFAULT_MIN_NOTIONAL.get(exchange, 5.0), maker, taker)
