"""`lot_amount` and `tick_price` of `core.market_rules`, bit for bit, for the engine's hot paths.

The exchange rules stay in `core.market_rules`: the rounding to the step (`floor_to_step`,
`round_price`) is called from there. What differs is only how the float noise is cleaned: numba's
`round(x, ndigits)` computes `10.0 ** ndigits` at every call (most of a 20-30 ns call); here the
power comes from a table of the exact powers 10**0..10**22 and the rest is numba's own algorithm
(`rint(x * 10**n) / 10**n`, with its nan/inf and overflow cases), so the results are identical
(tests/strategies/test_rounding.py compares both over many values and every decimal count).
"""

from __future__ import annotations

import math

import numpy as np

from core.market_rules import R_LOT, R_LOT_DEC, R_TICK, R_TICK_DEC, floor_to_step, round_price
from strategies.jit import engine_jit

# 10**k is exactly representable for k <= 22, so the table holds the very values numba's pow yields.
_POW10 = np.array([10.0**k for k in range(23)])


@engine_jit()
def round_decimals(x: float, ndigits: int) -> float:
    """Python's round(x, ndigits) as numba computes it, for 0 <= ndigits <= 22 (others: numba's own)."""
    if ndigits < 0 or ndigits > 22 or math.isinf(x) or math.isnan(x):
        return round(x, ndigits)
    p = _POW10[ndigits]
    y = x * p
    if math.isinf(y):
        return x
    return np.rint(y) / p


@engine_jit()
def tick_price(price: float, rules: np.ndarray, is_buy: bool) -> float:
    """core.market_rules.tick_price: on the tick grid (buys down, sells up), without float noise."""
    return round_decimals(round_price(price, rules[R_TICK], is_buy), int(rules[R_TICK_DEC]))


@engine_jit()
def lot_amount(amount: float, rules: np.ndarray) -> float:
    """core.market_rules.lot_amount: truncated to the lot grid, without float noise."""
    return round_decimals(floor_to_step(amount, rules[R_LOT]), int(rules[R_LOT_DEC]))
