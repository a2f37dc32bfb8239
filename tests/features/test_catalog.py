"""Every declared warm-up is exact: W bars give the full-history value bit for bit, W-1 bars give NaN,
and a missing candle (NaN row) poisons exactly the windows that contain it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from features.catalog import TEMPLATE, compute_template, compute_time

COLS = ("open", "high", "low", "close", "volume")


@pytest.fixture(scope="module")
def arrays(sample_btc_5m):
    df = sample_btc_5m.iloc[8000:8400]
    return [df[c].to_numpy() for c in COLS]


@pytest.fixture(scope="module")
def full(arrays):
    return compute_template(*arrays)


@pytest.mark.parametrize("name", list(TEMPLATE))
def test_declared_warmup_is_exact(name, arrays, full):
    w = TEMPLATE[name]
    for i in (w + 3, 250, 399):
        exact = compute_template(*[a[i - w + 1 : i + 1] for a in arrays])[name]
        assert np.isfinite(full[name][i])
        assert exact[-1] == full[name][i], f"{name}: {w} bars do not reproduce the value at {i}"
        if w > 1:
            short = compute_template(*[a[i - w + 2 : i + 1] for a in arrays])[name]
            assert math.isnan(short[-1]), f"{name}: {w - 1} bars already give a value; the warm-up is overstated"


@pytest.mark.parametrize("name", list(TEMPLATE))
def test_missing_candle_poisons_exactly_its_windows(name, arrays, full):
    w, i = TEMPLATE[name], 300
    inside = [a.copy() for a in arrays]
    for a in inside:
        a[i - w + 1] = np.nan  # the oldest bar of the window
    assert math.isnan(compute_template(*inside)[name][i])
    outside = [a.copy() for a in arrays]
    for a in outside:
        a[i - w] = np.nan  # one bar before the window
    assert compute_template(*outside)[name][i] == full[name][i]


def test_time_features_use_utc_open_time():
    monday_6h = 1_672_617_600_000 + 6 * 3_600_000  # 2023-01-02 06:00 UTC, a Monday
    t = compute_time(np.array([monday_6h], dtype=np.int64))
    assert t["tod_sin"][0] == pytest.approx(1.0) and t["tod_cos"][0] == pytest.approx(0.0, abs=1e-12)
    assert t["dow_sin"][0] == pytest.approx(0.0, abs=1e-12) and t["dow_cos"][0] == pytest.approx(1.0)


def test_features_are_scale_free(arrays, full):
    """Prices x1000 and volume x0.001 (another quote, another base unit) leave every feature unchanged."""
    o, h, lo, c, v = arrays
    scaled = compute_template(o * 1000, h * 1000, lo * 1000, c * 1000, v * 0.001)
    for name in TEMPLATE:
        np.testing.assert_allclose(scaled[name], full[name], rtol=1e-7, atol=1e-9, err_msg=name)
