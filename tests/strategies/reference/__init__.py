"""A slow, obvious pure-Python backtester with the engine's documented semantics (strategies/README.md).

Written from the rules, not from the numba code: plain objects and lists, and it re-decides the
whole order set at every close (the engine re-decides only when its quiet band says the result
could change; agreeing fill for fill with this oracle is what proves that shortcut exact). It shares
only the exchange-rules module (the one place rounding lives) and the fill model's pure-Python body.

Modules by concern: state.py (orders, fills, holdings, engine state), fills.py (fill model and
booking), grid.py, dca.py, regime_risk.py (risk flags, budget, hysteresis, switches), loop.py
(`Reference`: the run's state and the order of the steps).
"""

from __future__ import annotations

import math

from tests.strategies.reference.fills import fill_time
from tests.strategies.reference.loop import Reference
from tests.strategies.reference.regime_risk import DAY_MS
from tests.strategies.reference.state import Dca, Fill, Grid, Holding, Legacy, Order

__all__ = ["DAY_MS", "Dca", "Fill", "Grid", "Holding", "Legacy", "Order", "Reference", "fill_time", "is_finite"]


def is_finite(x: float) -> bool:
    return not (math.isnan(x) or math.isinf(x))
