"""The live runner's newest row (`features.latest`): the full build's row bit for bit whenever the full
build has it, an error when it has not, and the plain computation's row (latest_oracle) on bad candles."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from core.errors import DataError
from core.resample import resample
from features import build_features, build_latest, candle_arrays, latest_row, make_spec
from features.catalog import compute_time
from features.latest import _raise_unavailable
from features.time_of_bar import put_time_features
from tests.features.conftest import load_sample
from tests.features.latest_oracle import oracle_row


def test_array_forms_and_the_frame_give_the_full_build_s_row(sample_btc_5m):
    spec = make_spec("5m", ["15m", "1h", "4h"])
    df = sample_btc_5m.iloc[:9000].reset_index(drop=True)
    full = build_features(df, spec)
    ts, ohlcv = candle_arrays(df)
    need = spec.warmup_base_bars
    # Consecutive bars, as the runner calls it, in both input forms.
    for end in range(len(df) - 60, len(df) + 1):
        want = full.loc[int(ts[end - 1])].to_numpy()
        np.testing.assert_array_equal(latest_row(ts[end - need - 3:end], ohlcv[end - need - 3:end], spec), want)
        np.testing.assert_array_equal(latest_row(ts[:end], list(ohlcv[:end].T), spec), want)
    np.testing.assert_array_equal(build_latest(df, spec).to_numpy()[0], full.to_numpy()[-1])


def test_interleaved_pairs_keep_their_own_rows(sample_btc_5m):
    """Two pairs interleaved bar by bar: each gets its own values (nothing carries over between calls)."""
    spec = make_spec("5m", ["1h"])
    a = sample_btc_5m.iloc[:5000].reset_index(drop=True)
    b = a.assign(close=a["close"] * 1.01, high=a["high"] * 1.01)
    fa, fb = build_features(a, spec), build_features(b, spec)
    (ta, oa), (tb, ob) = candle_arrays(a), candle_arrays(b)
    need = spec.warmup_base_bars
    for end in range(len(a) - 30, len(a) + 1):
        np.testing.assert_array_equal(latest_row(ta[end - need:end], oa[end - need:end], spec), fa.loc[int(ta[end - 1])].to_numpy())
        np.testing.assert_array_equal(latest_row(tb[end - need:end], ob[end - need:end], spec), fb.loc[int(tb[end - 1])].to_numpy())


# ---------------------------------------------------------------- any window, several timeframe sets (hypothesis)

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

SPECS = {
    "5m+15m,1h,4h": ("5m", ["15m", "1h", "4h"]),
    "5m+30m,2h,12h": ("5m", ["30m", "2h", "12h"]),
    "15m+1h,6h": ("15m", ["1h", "6h"]),
}


@functools.cache
def candles_of(base: str) -> pd.DataFrame:
    df = load_sample("BTC/USDT")
    return df if base == "5m" else resample(df, "5m", base)


def draw_window(data, df: pd.DataFrame, need: int, long_only: bool = False) -> pd.DataFrame:
    """A window ending anywhere (mostly late enough for a row), often right at the warm-up edge,
    sometimes with a gap or two in it."""
    late = st.integers(min(need, len(df)), len(df))
    end = data.draw(late if long_only else st.one_of(late, late, st.integers(1, len(df))), label="end")
    edge, long = st.integers(need - 3, need + 3), st.integers(need, need + 3000)
    lengths = st.one_of(edge, long) if long_only else st.one_of(edge, edge, long, st.integers(1, need + 400))
    window = df.iloc[max(0, end - data.draw(lengths, label="length")) : end]
    for _ in range(data.draw(st.sampled_from([0, 0, 0, 1, 2]), label="gaps")):
        if len(window) > 2:
            # before the newest row's warm-up (the row survives) or anywhere (it usually does not)
            early = st.integers(1, max(1, len(window) - need))
            at = data.draw(st.one_of(early, st.integers(1, len(window) - 1)), label="gap_at")
            width = data.draw(st.integers(1, 40), label="gap_width")
            window = pd.concat([window.iloc[:at], window.iloc[at + width :]]) if at + width < len(window) else window
    return window.reset_index(drop=True)


@pytest.mark.parametrize("name", list(SPECS))
@SETTINGS
@given(data=st.data())
def test_newest_row_exists_exactly_when_the_full_build_has_it_and_is_the_same(name, data):
    base, tfs = SPECS[name]
    spec = make_spec(base, tfs)
    window = draw_window(data, candles_of(base), spec.warmup_base_bars)
    full = build_features(window, spec)
    ts, ohlcv = candle_arrays(window)
    newest = int(ts[-1])
    event("row exists" if newest in full.index else "row unavailable")
    if newest in full.index:
        np.testing.assert_array_equal(latest_row(ts, ohlcv, spec), full.loc[newest].to_numpy())
    else:
        with pytest.raises(DataError, match="gap in the last|needs .* consecutive"):
            latest_row(ts, ohlcv, spec)


@SETTINGS
@given(data=st.data())
def test_bad_candles_anywhere_give_the_oracle_s_row_or_its_error(data):
    """NaN, zero or negative prices and volumes where the full build cannot be asked (it refuses the
    whole frame): the row equals the plain per-timeframe computation, or fails with its message."""
    spec = make_spec("5m", ["15m", "1h", "4h"])
    window = draw_window(data, candles_of("5m"), spec.warmup_base_bars, long_only=True)
    ts, ohlcv = candle_arrays(window)
    ohlcv = ohlcv.copy()
    for _ in range(data.draw(st.integers(1, 2), label="bad_cells")):
        # near the newest bar, anywhere, or where only the 4h volume z-score still reads a volume
        back = data.draw(st.one_of(st.integers(1, min(120, len(ts))), st.integers(1, len(ts)),
                                   st.integers(min(2400, len(ts)), len(ts))), label="bars_back")  # fmt: skip
        cols = data.draw(st.sampled_from([[4], [4], [4], [4], [1], [2], [3], [0, 1, 2, 3], [0, 1, 2, 3, 4]]), label="cols")
        ohlcv[len(ts) - back, cols] = data.draw(st.sampled_from([np.nan, 0.0, -1.0]), label="value")
    want = oracle_row(ts, ohlcv, spec)
    event("finite" if np.isfinite(want).all() else "refused")
    if np.isfinite(want).all():
        np.testing.assert_array_equal(latest_row(ts, ohlcv, spec), want)
        return
    with pytest.raises(DataError) as expected:
        _raise_unavailable(ts[-spec.warmup_base_bars :], want, spec, 300_000)
    with pytest.raises(DataError) as got:
        latest_row(ts, ohlcv, spec)
    assert (got.value.problem, got.value.fix) == (expected.value.problem, expected.value.fix)


def test_time_features_are_compute_time_s_for_any_open_time():
    rng = np.random.default_rng(3)
    cols = {"tod_sin": 0, "tod_cos": 1, "dow_sin": 2, "dow_cos": 3}
    for ts_ms in [0, -1, -86_400_000, *rng.integers(-(2**41), 2**42, 3000).tolist()]:
        row = np.full(4, np.nan)
        put_time_features(row, ts_ms, cols)
        want = compute_time(np.array([ts_ms], dtype=np.int64))
        assert row.tolist() == [float(want[k][0]) for k in cols], ts_ms


def test_bad_input_is_named_in_the_usual_order(sample_btc_5m):
    spec = make_spec("5m", ["1h"])
    ts, ohlcv = candle_arrays(sample_btc_5m.iloc[:2000])
    with pytest.raises(DataError, match="dtype float64"):
        latest_row(ts.astype(float), ohlcv, spec)
    with pytest.raises(DataError, match="not sorted"):  # reported before the column mismatch
        latest_row(ts[::-1], ohlcv[:-1], spec)
    with pytest.raises(DataError, match="off the 5m grid"):
        latest_row(ts + 60_000, ohlcv, spec)
    with pytest.raises(DataError, match="do not match the open times"):
        latest_row(ts, ohlcv[:, :4], spec)
    with pytest.raises(DataError, match="do not match the open times"):
        latest_row(ts[-5:], list(ohlcv[-5:].T)[:4] + [ohlcv[-4:, 4]], spec)
    with pytest.raises(DataError, match="no candles"):
        latest_row(ts[:0], ohlcv[:0], spec)
    np.testing.assert_array_equal(latest_row(ts.astype(np.uint64), ohlcv.astype(np.float32), spec),
                                  latest_row(ts, ohlcv.astype(np.float32).astype(np.float64), spec))  # fmt: skip
