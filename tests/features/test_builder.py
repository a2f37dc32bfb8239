"""The multi-timeframe join's timing, gap segments, and clear errors for bad candles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.errors import DataError
from features import build_features, build_latest, gap_report, make_spec

H_MS = 3_600_000
M5 = 300_000
T0 = 1_672_531_200_000  # 2023-01-01 00:00 UTC


def synthetic(n: int, start_ms: int = T0, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    o = np.r_[100.0, c[:-1]]
    return pd.DataFrame(
        {
            "ts": start_ms + np.arange(n, dtype=np.int64) * M5,
            "open": o,
            "high": np.maximum(o, c) * 1.001,
            "low": np.minimum(o, c) * 0.999,
            "close": c,
            "volume": rng.uniform(1, 10, n),
        }
    )


def test_hour_candle_appears_on_the_bar_that_closes_it():
    spec = make_spec("5m", ["1h"])
    df = synthetic(3000)
    x = build_features(df, spec)
    close = dict(zip(df["ts"], df["close"], strict=True))
    hour = T0 + 200 * H_MS  # a 1h candle opening at `hour` closes at hour + 1h
    # bar opening at hour+55m closes at hour+1h: the first bar allowed to see that candle
    at_close = x.loc[hour + 55 * 60_000, "1h_ret_1"]
    assert at_close == pytest.approx(np.log(close[hour + 55 * 60_000] / close[hour - M5]), rel=1e-12)
    # one bar earlier the newest closed hour is the previous one
    before = x.loc[hour + 50 * 60_000, "1h_ret_1"]
    assert before == pytest.approx(np.log(close[hour - M5] / close[hour - H_MS - M5]), rel=1e-12)


def test_rows_start_within_the_declared_warmup_and_have_no_nan():
    spec = make_spec("5m", ["15m", "1h"])
    for offset in (0, 7, 11):  # data starting mid-hour
        df = synthetic(3000).iloc[offset:]
        x = build_features(df, spec)
        assert list(x.columns) == spec.names and np.isfinite(x.to_numpy()).all()
        assert x.index[0] <= df["ts"].iloc[spec.warmup_base_bars - 1]
        assert x.index.is_monotonic_increasing and x.index.isin(df["ts"]).all()


def test_gap_restarts_the_warmup_and_nothing_spans_it(sample_btc_5m):
    spec = make_spec("5m", ["15m", "1h"])
    df = sample_btc_5m.iloc[:9000]
    holed = pd.concat([df.iloc[:4000], df.iloc[4010:]], ignore_index=True)
    x = build_features(holed, spec)
    before = build_features(df.iloc[:4000], spec)
    after = build_features(df.iloc[4010:], spec)
    # the holed build is exactly the two segments built on their own
    expected = pd.concat([before, after])
    assert x.index.equals(expected.index)
    np.testing.assert_array_equal(x.to_numpy(), expected.to_numpy())
    resume = df["ts"].iloc[4010]
    assert x.index[x.index >= resume][0] >= resume + (spec.warmup_base_bars - 12) * M5
    gaps = gap_report(holed, spec)
    assert len(gaps) == 1 and gaps[0].missing == 10


def test_live_window_errors_name_the_minimum_and_the_gap(sample_btc_5m):
    spec = make_spec("5m", ["1h"])
    need = spec.warmup_base_bars
    with pytest.raises(DataError, match=f"needs {need} consecutive 5m candles; the window has {need // 2}"):
        build_latest(sample_btc_5m.iloc[: need // 2], spec)
    window = sample_btc_5m.iloc[: need + 100]
    holed = window.drop(window.index[-50])
    with pytest.raises(DataError, match=r"gap in the last \d+ 5m candles .*1 missing.*cannot be built across") as e:
        build_latest(holed, spec)
    assert "wait until" in (e.value.fix or "")


def test_bad_candles_are_refused_clearly(sample_btc_5m):
    spec = make_spec("5m", ["1h"])
    df = sample_btc_5m.iloc[:2000]
    with pytest.raises(DataError, match="not sorted"):
        build_features(df.iloc[::-1], spec)
    with pytest.raises(DataError, match="off the 5m grid"):
        build_features(df.assign(ts=df["ts"] + 60_000), spec)
    with pytest.raises(DataError, match="lack column"):
        build_features(df.drop(columns="volume"), spec)
    broken = df.copy()
    broken.loc[1900, ["open", "high", "low", "close"]] = 0.0
    with pytest.raises(DataError, match="not finite at 2023"):
        build_features(broken, spec)


def test_too_little_data_gives_an_empty_matrix_not_nan(sample_btc_5m):
    spec = make_spec("5m", ["4h"])
    x = build_features(sample_btc_5m.iloc[:500], spec)
    assert x.empty and list(x.columns) == spec.names
