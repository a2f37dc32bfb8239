from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.candles import COLUMNS, validate_candles
from core.errors import ConfigError, DataError
from core.resample import resample, resample_many
from tests.core.test_candles import M5, T0, candles

H1 = 3_600_000


def oracle(df: pd.DataFrame, n: int, to_ms: int, origin: int = 0) -> pd.DataFrame:
    """Slow, obvious version: group by bucket in Python, keep complete buckets."""
    rows = []
    for bucket, g in df.groupby((df["ts"] - origin) // to_ms, sort=True):
        if len(g) == n:
            rows.append((bucket * to_ms + origin, g.open.iloc[0], g.high.max(), g.low.min(), g.close.iloc[-1], round(g.volume.sum(), 8)))
    return pd.DataFrame(rows, columns=list(COLUMNS)).astype({"ts": "int64"})


def test_matches_oracle_with_gaps_and_partial_edges():
    rng = np.random.default_rng(7)
    df = candles(2000, start=T0 + 7 * M5)  # starts mid-hour: first bucket partial
    df = df.drop(index=rng.choice(len(df), 40, replace=False)).reset_index(drop=True)
    out = resample(df, "5m", "1h")
    pd.testing.assert_frame_equal(out, oracle(df, 12, H1), check_exact=True)
    assert len(out) > 100 and (out["ts"] % H1 == 0).all()


def test_partial_last_and_holed_buckets_are_dropped():
    df = candles(12 * 3 + 5)  # 3 full hours + 5 candles of the 4th
    out = resample(df, "5m", "1h")
    assert out["ts"].tolist() == [T0, T0 + H1, T0 + 2 * H1]
    holed = df.drop(index=[15]).reset_index(drop=True)  # hole in the second hour
    out = resample(holed, "5m", "1h")
    assert out["ts"].tolist() == [T0, T0 + 2 * H1]
    _, report = validate_candles(out, "1h")
    assert report.missing == 1  # the dropped bucket surfaces as a gap, not a half candle


def test_values_of_one_bucket():
    df = candles(12)
    row = resample(df, "5m", "1h").iloc[0]
    assert row.open == df.open.iloc[0] and row.close == df.close.iloc[-1]
    assert row.high == df.high.max() and row.low == df.low.min()
    assert row.volume == pytest.approx(df.volume.sum(), abs=1e-8)


def test_weekly_buckets_start_monday():
    monday = 1_672_617_600_000  # 2023-01-02
    daily = candles(21, tf_ms=86_400_000, start=monday - 86_400_000)  # starts on a Sunday
    out = resample(daily, "1d", "1w")
    assert out["ts"].tolist() == [monday, monday + 7 * 86_400_000]


def test_resample_many_and_identity():
    df = candles(288)
    many = resample_many(df, "5m", ["15m", "1h", "4h", "1d"])
    assert {k: len(v) for k, v in many.items()} == {"15m": 96, "1h": 24, "4h": 6, "1d": 1}
    pd.testing.assert_frame_equal(resample(df, "5m", "5m"), df)
    assert resample(df.iloc[:0], "5m", "1h").empty


def test_incompatible_timeframes_and_bad_input():
    with pytest.raises(ConfigError, match="cannot build 5m candles from 1h"):
        resample(candles(3), "1h", "5m")
    with pytest.raises(ConfigError, match="cannot build 5m candles from 3m"):
        resample(candles(3, tf_ms=180_000), "3m", "5m")
    with pytest.raises(ConfigError, match="cannot build 6h candles from 4h"):
        resample(candles(3, tf_ms=4 * H1), "4h", "6h")
    with pytest.raises(DataError, match="not sorted and unique"):
        resample(candles(5).iloc[::-1], "5m", "1h")
    with pytest.raises(DataError, match="off the 5m grid"):
        resample(candles(5).assign(ts=lambda d: d.ts + 1), "5m", "1h")


@pytest.mark.shared_data
@pytest.mark.parametrize("folder", ["2023_1h_5m", "2024-01_09_1h_5m"])
@pytest.mark.parametrize("base", ["BTC", "ETH"])
def test_5m_to_1h_equals_binance_1h_exactly(shared_ohlcv, folder, base):
    def read(tf):
        raw = pd.read_feather(shared_ohlcv / folder / f"{base}_USDT-{tf}.feather")
        raw.insert(0, "ts", raw.pop("date").dt.as_unit("ms").astype("int64"))
        return validate_candles(raw, tf, off_grid="reject")[0]

    m5, h1 = read("5m"), read("1h")
    ours = resample(m5, "5m", "1h")
    theirs = h1[h1["ts"].isin(ours["ts"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(ours, theirs, check_exact=True)
    # Every Binance hour inside the 5m span that we did not emit has missing 5m candles.
    span = h1[(h1["ts"] >= m5["ts"].iloc[0]) & (h1["ts"] + H1 <= m5["ts"].iloc[-1] + M5)]
    skipped = span[~span["ts"].isin(ours["ts"])]["ts"]
    for hour in skipped:
        assert ((m5["ts"] >= hour) & (m5["ts"] < hour + H1)).sum() < 12
    assert len(ours) >= len(span) - 1 and len(ours) > 5000
