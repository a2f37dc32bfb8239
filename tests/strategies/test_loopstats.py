"""The simulator's scalar statistics (`loopstats.stats_step`) equal `metrics.stats_update` bit for bit."""

from __future__ import annotations

import numba as nb
import numpy as np

from strategies.loopstats import stats_load, stats_step, stats_store
from strategies.metrics import new_stats, stats_update


@nb.njit
def _scalar(st, eq, cash, inv, inv_cost, held, close):  # type: ignore[no-untyped-def]
    s = stats_load(st)
    for i in range(eq.shape[0]):
        s = stats_step(s, eq[i], cash[i], inv[i], inv_cost[i], held[i], close[i])
    stats_store(st, s)


@nb.njit
def _array(st, eq, cash, inv, inv_cost, held, close):  # type: ignore[no-untyped-def]
    for i in range(eq.shape[0]):
        stats_update(st, eq[i], cash[i], inv[i], inv_cost[i], held[i], close[i])


def test_scalar_stats_equal_stats_update_bit_for_bit():
    rng = np.random.default_rng(3)
    n = 20_000
    eq = 1000.0 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    eq[rng.integers(0, n, 50)] = eq[0]  # flat bars (r = 0)
    eq[100:110] = 1000.0  # a flat stretch
    eq[5000] = np.nan  # a nan equity must not change the downside sum differently
    cash = rng.uniform(-1.0, 500.0, n)
    inv = rng.uniform(0.0, 2.0, n)
    inv_cost = np.where(rng.random(n) < 0.3, 0.0, rng.uniform(0.0, 900.0, n))
    held = rng.uniform(0.0, 900.0, n)
    close = rng.uniform(10.0, 20.0, n)
    for start in (1000.0, 0.0):  # a zero first equity takes the r = 0 path
        a, b = new_stats(start), new_stats(start)
        _scalar(a, eq, cash, inv, inv_cost, held, close)
        _array(b, eq, cash, inv, inv_cost, held, close)
        assert a.tobytes() == b.tobytes()
    # and without the nan, the figures are finite: the comparison above compared real numbers
    a, b = new_stats(1000.0), new_stats(1000.0)
    eq[5000] = eq[4999]
    _scalar(a, eq, cash, inv, inv_cost, held, close)
    _array(b, eq, cash, inv, inv_cost, held, close)
    assert a.tobytes() == b.tobytes() and np.isfinite(a).all()
