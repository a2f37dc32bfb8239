"""Regime labels on constructed price paths whose regime is known, and their window discipline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.labels import REGIMES, LabelRule, class_balance, label_components, label_regimes

RULE = LabelRule(horizon_bars=12, trail_factor=10)  # trailing window 120 bars
M5 = 300_000


def frame(close: np.ndarray, start_ms: int = 1_672_531_200_000) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ts": start_ms + np.arange(len(close), dtype=np.int64) * M5,
            "open": close,
            "high": close,
            "low": close,
            "close": close,
            "volume": np.ones(len(close)),
        }
    )


def noise(n: int, sigma: float, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, sigma, n)


def path(returns: np.ndarray) -> np.ndarray:
    return 100 * np.exp(np.cumsum(returns))


def label_at(returns: np.ndarray, t: int) -> str:
    df = frame(path(returns))
    return label_regimes(df, RULE, "5m").loc[df["ts"].iloc[t]]


def test_steady_rise_and_fall_are_trends():
    r = noise(400, 0.001, 1)
    up = r.copy()
    up[301:313] = 0.003  # +3.6% in 12 bars, straight: z ~ 10, efficiency 1
    down = r.copy()
    down[301:313] = -0.003
    assert label_at(up, 300) == "trend_up"
    assert label_at(down, 300) == "trend_down"


def test_quiet_noise_is_range_and_a_volatility_burst_is_high_volatility():
    r = noise(400, 0.001, 2)
    quiet = r.copy()
    quiet[301:313] = 0.0008 * np.array([1, -1] * 6)  # usual-sized swings that go nowhere
    assert label_at(quiet, 300) == "range"
    burst = r.copy()
    burst[301:313] = 0.004 * np.array([1, -1] * 6)  # large swings that go nowhere
    assert label_at(burst, 300) == "high_volatility"


def test_label_uses_only_its_windows():
    r = noise(600, 0.001, 3)
    base = label_components(frame(path(r)), RULE, "5m")
    changed = r.copy()
    changed[300 + RULE.horizon_bars + 1 :] *= 5  # beyond t + H
    changed[: 300 - RULE.trail_bars] *= 5  # before the trailing window (prices shift, returns do not)
    again = label_components(frame(path(changed)), RULE, "5m")
    t = base.index[300]
    pd.testing.assert_series_equal(base.loc[t], again.loc[t])


def test_labels_are_scale_free():
    df = frame(path(noise(800, 0.002, 4)))
    scaled = df.assign(**{c: df[c] * 1234.5 for c in ("open", "high", "low", "close")})
    pd.testing.assert_series_equal(label_regimes(df, RULE, "5m"), label_regimes(scaled, RULE, "5m"))


def test_no_label_at_the_end_or_across_a_gap():
    df = frame(path(noise(800, 0.002, 5)))
    labels = label_regimes(df, RULE, "5m")
    assert labels.index[-1] == df["ts"].iloc[-1 - RULE.horizon_bars]
    assert labels.index[0] == df["ts"].iloc[RULE.trail_bars]
    holed = df.drop(index=range(400, 405)).reset_index(drop=True)
    got = label_regimes(holed, RULE, "5m")
    gap_start, gap_end = df["ts"].iloc[400], df["ts"].iloc[405]
    near = got.index[(got.index > gap_start - (RULE.horizon_bars + 1) * M5) & (got.index < gap_end + RULE.trail_bars * M5)]
    assert len(near) == 0


def test_class_balance_lists_every_regime():
    bal = class_balance(np.array(["range", "range", "trend_up"], dtype=object))
    assert list(bal.index) == list(REGIMES)
    assert bal.loc["range", "bars"] == 2 and bal.loc["high_volatility", "bars"] == 0
    assert bal["share"].sum() == pytest.approx(1.0)


def test_balance_on_real_candles_is_usable(sample_btc_5m):
    labels = label_regimes(sample_btc_5m, LabelRule(24), "5m")
    share = class_balance(labels)["share"]
    assert share["range"] < 0.9 and (share.drop("range") > 0.03).all()
