"""The live runner's numpy row (`features.latest`): same bits as the full build, same candles as core.resample."""

from __future__ import annotations

import numpy as np
import pytest

from core.candles import grid_origin_ms
from core.resample import resample
from core.timeframes import timeframe_ms
from features import build_features, build_latest, candle_arrays, latest_row, make_spec
from features.latest import _Higher, _resample_run


@pytest.mark.parametrize("tf", ["15m", "1h", "4h", "1d", "1w"])
def test_tail_resample_equals_core_resample_bit_for_bit(sample_btc_5m, tf):
    df = sample_btc_5m.iloc[:20000]
    r = timeframe_ms(tf) // 300_000
    for start in (0, 1, 7, r - 1, 5000):
        part = df.iloc[start:]
        ts, cols = candle_arrays(part)
        got_ts, got = _resample_run(ts, list(cols.T), _Higher(timeframe_ms(tf), r, grid_origin_ms(tf), 0, {}))
        want = resample(part, "5m", tf)
        np.testing.assert_array_equal(got_ts, want["ts"].to_numpy())
        for c, name in zip(got, ["open", "high", "low", "close", "volume"], strict=True):
            np.testing.assert_array_equal(c, want[name].to_numpy())


def test_array_forms_and_the_frame_give_the_full_build_s_row(sample_btc_5m):
    spec = make_spec("5m", ["15m", "1h", "4h"])
    df = sample_btc_5m.iloc[:9000].reset_index(drop=True)
    full = build_features(df, spec)
    ts, ohlcv = candle_arrays(df)
    need = spec.warmup_base_bars
    # Consecutive bars, as the runner calls it: the memoised higher-timeframe rows must stay exact.
    for end in range(len(df) - 60, len(df) + 1):
        want = full.loc[int(ts[end - 1])].to_numpy()
        np.testing.assert_array_equal(latest_row(ts[end - need - 3:end], ohlcv[end - need - 3:end], spec), want)
        np.testing.assert_array_equal(latest_row(ts[:end], list(ohlcv[:end].T), spec), want)
    np.testing.assert_array_equal(build_latest(df, spec).to_numpy()[0], full.to_numpy()[-1])


def test_memo_keeps_pairs_apart(sample_btc_5m):
    """Two pairs interleaved bar by bar: each gets its own higher-timeframe values."""
    spec = make_spec("5m", ["1h"])
    a = sample_btc_5m.iloc[:5000].reset_index(drop=True)
    b = a.assign(close=a["close"] * 1.01, high=a["high"] * 1.01)
    fa, fb = build_features(a, spec), build_features(b, spec)
    (ta, oa), (tb, ob) = candle_arrays(a), candle_arrays(b)
    need = spec.warmup_base_bars
    for end in range(len(a) - 30, len(a) + 1):
        np.testing.assert_array_equal(latest_row(ta[end - need:end], oa[end - need:end], spec), fa.loc[int(ta[end - 1])].to_numpy())
        np.testing.assert_array_equal(latest_row(tb[end - need:end], ob[end - need:end], spec), fb.loc[int(tb[end - 1])].to_numpy())
