"""The running statistics of `metrics.stats_update`, held in local scalars inside the simulator's loop.

`stats_update` keeps its figures in a float64 array. In the simulator's loop the compiler cannot tell
that array from the engine's state arrays, so every bar's dozen stores to it forced reloads and
memory round trips of the state: about 20 ns a bar, more than the whole quiet-bar test. Here the same
figures travel as one tuple of scalars (numba keeps them in registers), loaded from the array before
the loop and stored back after it. `stats_step` performs exactly `stats_update`'s operations in the
same order, so the results are bit for bit the same (tests/strategies/test_loopstats.py checks it).
"""

from __future__ import annotations

import numpy as np

from strategies.jit import engine_jit
from strategies.metrics import (
    ST_EQ_PREV,
    ST_IN_MKT,
    ST_LAST_CLOSE,
    ST_MAX_DD,
    ST_MIN_CASH,
    ST_MIN_INV,
    ST_N,
    ST_PEAK,
    ST_SUM_D2,
    ST_SUM_R,
    ST_SUM_R2,
    ST_UW_MAX,
    ST_UW_RUN,
)

# Tuple order: n, sum_r, sum_r2, sum_d2, eq_prev, peak, max_dd, in_mkt, uw_run, uw_max, min_cash, min_inv,
# last_close (ST_EQ0 never changes in the loop).


@engine_jit(inline="always")
def stats_load(st: np.ndarray) -> tuple[float, float, float, float, float, float, float, float, float, float,
                                        float, float, float]:
    return (st[ST_N], st[ST_SUM_R], st[ST_SUM_R2], st[ST_SUM_D2], st[ST_EQ_PREV], st[ST_PEAK], st[ST_MAX_DD],
            st[ST_IN_MKT], st[ST_UW_RUN], st[ST_UW_MAX], st[ST_MIN_CASH], st[ST_MIN_INV], st[ST_LAST_CLOSE])


@engine_jit(inline="always")
def stats_store(st: np.ndarray, s: tuple) -> None:  # type: ignore[type-arg]
    st[ST_N], st[ST_SUM_R], st[ST_SUM_R2], st[ST_SUM_D2] = s[0], s[1], s[2], s[3]
    st[ST_EQ_PREV], st[ST_PEAK], st[ST_MAX_DD], st[ST_IN_MKT] = s[4], s[5], s[6], s[7]
    st[ST_UW_RUN], st[ST_UW_MAX], st[ST_MIN_CASH], st[ST_MIN_INV] = s[8], s[9], s[10], s[11]
    st[ST_LAST_CLOSE] = s[12]


@engine_jit(inline="always")
def stats_step(s: tuple, equity: float, cash: float, inv: float, inv_cost: float,  # type: ignore[type-arg]
               held_value: float, close: float) -> tuple[float, float, float, float, float, float, float, float,
                                                         float, float, float, float, float]:
    """One bar's equity into the running statistics: `metrics.stats_update`, operation for operation."""
    n, sum_r, sum_r2, sum_d2, eq_prev, peak, max_dd, in_mkt, uw_run, uw_max, min_cash, min_inv, _ = s
    r = equity / eq_prev - 1.0 if eq_prev > 0.0 else 0.0
    n += 1.0
    sum_r += r
    sum_r2 += r * r
    # no branch: the sign of a bar's return is a coin flip the CPU would mispredict half the time.
    # min(0.0, r) is r when r < 0 and +0.0 otherwise (nan too), and adding +0.0 leaves the
    # non-negative sum unchanged: exactly stats_update's `if r < 0.0: sum_d2 += r * r`
    down = min(0.0, r)
    sum_d2 += down * down
    eq_prev = equity
    peak = equity if equity > peak else peak
    dd = 1.0 - equity / peak
    max_dd = dd if dd > max_dd else max_dd
    in_market = inv_cost > 0.0
    in_mkt += 1.0 if in_market else 0.0
    uw_run = uw_run + 1.0 if (in_market and held_value < inv_cost) else 0.0
    uw_max = uw_run if uw_run > uw_max else uw_max
    min_cash = cash if cash < min_cash else min_cash
    min_inv = inv if inv < min_inv else min_inv
    return (n, sum_r, sum_r2, sum_d2, eq_prev, peak, max_dd, in_mkt, uw_run, uw_max, min_cash, min_inv, close)
