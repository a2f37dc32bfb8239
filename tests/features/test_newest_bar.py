"""`newest_bar.newest_templates` is catalog's template at the last candle, bit for bit, for any length
and any bad values (NaN, zero, negative, inf): the arithmetic is a copy, so every path is compared."""

from __future__ import annotations

import numpy as np
import pytest

from features import catalog
from features.newest_bar import N_TEMPLATE, TEMPLATE_ORDER, newest_templates

WEIGHTS = (catalog._W14, catalog._W14_ADX, catalog._E12, catalog._E26, catalog._E36, catalog._E9)


def newest(x: np.ndarray) -> np.ndarray:
    """The kernel on one timeframe's (n, 5) candles, as features.latest calls it."""
    n = len(x)
    tails = np.ones((1, 5, max(n, 1)))
    tails[0, :, :n] = x.T
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log(np.stack([tails[:, 1] / tails[:, 2], tails[:, 3] / tails[:, 0]]))
    row = np.full(N_TEMPLATE, -7.0)  # every slot must be written, NaN included
    newest_templates(tails, np.array([n]), logs[0], logs[1], WEIGHTS, catalog._LN2, np.arange(N_TEMPLATE)[None, :], row)
    return row


def expected(x: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        full = catalog.compute_template(*[np.ascontiguousarray(x[:, j]) for j in range(5)])
    return np.array([full[k][-1] for k in TEMPLATE_ORDER])


def assert_same(x: np.ndarray) -> None:
    got, want = newest(x), expected(x)
    same = (got == want) | (np.isnan(got) & np.isnan(want))
    assert same.all(), {TEMPLATE_ORDER[j]: (got[j], want[j]) for j in np.flatnonzero(~same)} | {"n": len(x)}


@pytest.fixture(scope="module")
def candles(sample_btc_5m) -> np.ndarray:
    return sample_btc_5m[["open", "high", "low", "close", "volume"]].to_numpy()[8000:8400]


def test_order_is_the_catalog_s():
    assert TEMPLATE_ORDER == tuple(catalog.TEMPLATE)


def test_every_length_from_one_candle_to_well_past_the_warm_up(candles):
    """Covers each feature's warm-up edge (W - 1 bars: NaN, W bars: the value) at two offsets."""
    for n in range(1, 250):
        assert_same(candles[:n])
        assert_same(candles[len(candles) - n :])


@pytest.mark.parametrize("seed, bad", enumerate([np.nan, 0.0, -1.0, np.inf]))
def test_bad_values_anywhere_give_the_catalog_s_nan_or_inf(candles, seed, bad):
    rng = np.random.default_rng(seed)
    for _ in range(150):
        x = candles[rng.integers(0, 150) :][: rng.integers(1, 220)].copy()
        for _ in range(rng.integers(1, 4)):
            col = rng.integers(0, 5) if rng.random() < 0.6 else slice(None)
            x[rng.integers(0, len(x)), col] = bad
        assert_same(x)


def test_flat_and_zero_volume_markets_take_the_neutral_values(candles):
    flat = np.tile([[100.0, 100.0, 100.0, 100.0, 0.0]], (130, 1))
    assert_same(flat)
    steps = candles[:130].copy()
    steps[60:, :4] = steps[60, 3]  # the market freezes mid-window
    steps[60:, 4] = 0.0
    assert_same(steps)
