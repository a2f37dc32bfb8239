"""strategies.rounding gives core.market_rules' lot_amount / tick_price bit for bit."""

from __future__ import annotations

import numba as nb
import numpy as np

from core import market_rules as mr
from strategies import rounding


@nb.njit
def _both(values, rules, out):  # type: ignore[no-untyped-def]
    for i in range(values.shape[0]):
        x = values[i]
        out[i, 0], out[i, 1] = rounding.lot_amount(x, rules), mr.lot_amount(x, rules)
        out[i, 2], out[i, 3] = rounding.tick_price(x, rules, True), mr.tick_price(x, rules, True)
        out[i, 4], out[i, 5] = rounding.tick_price(x, rules, False), mr.tick_price(x, rules, False)


@nb.njit
def _round(values, nd, out):  # type: ignore[no-untyped-def]
    for i in range(values.shape[0]):
        out[i, 0], out[i, 1] = rounding.round_decimals(values[i], nd), round(values[i], nd)


def _values(rng, step):  # type: ignore[no-untyped-def]
    mags = 10.0 ** rng.uniform(-9, 7, 40_000)
    on_grid = np.round(rng.uniform(0, 1e5, 20_000)) * step  # multiples of the step and their neighbours
    edges = np.array([0.0, -0.0, 1e308, -1e308, np.inf, -np.inf, np.nan, 5e-324, 0.5, 2.5, 1e22, 1e23])
    return np.concatenate([mags, -mags[:1000], on_grid, np.nextafter(on_grid, np.inf),
                           np.nextafter(on_grid, -np.inf), edges])


def test_lot_amount_and_tick_price_equal_market_rules_bit_for_bit():
    rng = np.random.default_rng(11)
    pairs = [("binance", p) for p in ("BTC/USDT", "ETH/USDT", "XRP/USDT", "DOGE/USDT")] + [("bitget", "BTC/USDT")]
    for venue, pair in pairs:
        rules = mr.default_rules(venue, pair, 100.0).as_array()
        for step in (rules[mr.R_LOT], rules[mr.R_TICK]):
            vals = _values(rng, step)
            out = np.empty((len(vals), 6))
            _both(vals, rules, out)
            for a, b in ((0, 1), (2, 3), (4, 5)):
                assert out[:, a].tobytes() == out[:, b].tobytes(), (pair, a)


def test_round_decimals_equals_numba_round_for_every_decimal_count():
    rng = np.random.default_rng(12)
    vals = _values(rng, 1e-3)
    out = np.empty((len(vals), 2))
    for nd in range(-3, 26):
        _round(vals, nd, out)
        assert out[:, 0].tobytes() == out[:, 1].tobytes(), nd
