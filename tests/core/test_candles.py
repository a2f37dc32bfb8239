from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.candles import COLUMNS, epoch_to_ms, find_gaps, fmt_ts, validate_candles
from core.errors import DataError

T0 = 1_672_531_200_000  # 2023-01-01 00:00 UTC
M5 = 300_000


def candles(n: int = 10, tf_ms: int = M5, start: int = T0) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    close = 100 + rng.standard_normal(n).cumsum()
    open_ = np.r_[100.0, close[:-1]]
    return pd.DataFrame(
        {
            "ts": start + np.arange(n, dtype=np.int64) * tf_ms,
            "open": open_,
            "high": np.maximum(open_, close) + 0.5,
            "low": np.minimum(open_, close) - 0.5,
            "close": close,
            "volume": rng.uniform(0, 10, n),
        }
    )


def test_valid_frame_passes_with_contract_dtypes_and_report():
    df = candles(10).assign(extra="x", volume=lambda d: d.volume.astype("float32"))
    clean, report = validate_candles(df, "5m", source="t")
    assert list(clean.columns) == list(COLUMNS)
    assert clean["ts"].dtype == np.int64 and all(clean[c].dtype == np.float64 for c in COLUMNS[1:])
    assert (report.rows, report.first_ts, report.last_ts) == (10, T0, T0 + 9 * M5)
    assert report.gaps == () and report.missing == 0 and report.floored == 0
    assert report.gap_summary() == "none"


def test_clean_frame_is_independent_and_writable():
    df = candles(5)
    clean, _ = validate_candles(df, "5m")
    clean.loc[0, "close"] = 1e9
    assert df.loc[0, "close"] != 1e9


def test_missing_columns_lists_found_and_needed():
    with pytest.raises(DataError) as e:
        validate_candles(candles(3).drop(columns=["volume", "low"]), "5m", source="f.csv")
    msg = e.value.problem
    assert "f.csv" in msg and "missing column(s) low, volume" in msg and "found: ts, open, high, close" in msg


def test_duplicated_rows_rejected_naming_the_rows():
    df = candles(6)
    df.loc[4, "ts"] = df.loc[3, "ts"]
    df = pd.concat([df.iloc[:5], candles(1, start=T0 + 6 * M5)], ignore_index=True)
    with pytest.raises(DataError) as e:
        validate_candles(df, "5m", source="dup")
    assert "1 duplicated, 0 out of order" in e.value.problem
    assert "rows 3 and 4 share 2023-01-01 00:15 UTC" in e.value.problem
    assert "drop_duplicates" in (e.value.fix or "")


def test_unsorted_rows_rejected_naming_the_first():
    df = candles(5).iloc[[0, 1, 3, 2, 4]].reset_index(drop=True)
    with pytest.raises(DataError) as e:
        validate_candles(df, "5m")
    assert "(0 duplicated, 1 out of order)" in e.value.problem
    assert "row 3 (2023-01-01 00:10 UTC) comes after row 2 (2023-01-01 00:15 UTC)" in e.value.problem


def test_inconsistent_ohlc_names_row_and_values():
    df = candles(5)
    df.loc[2, "low"] = df.loc[2, "close"] + 1
    with pytest.raises(DataError) as e:
        validate_candles(df, "5m")
    assert "1 candle(s) with inconsistent OHLC" in e.value.problem and "row 2 (2023-01-01 00:10 UTC)" in e.value.problem
    df = candles(5)
    df.loc[1, "high"] = df.loc[1, "open"] - 0.01
    with pytest.raises(DataError, match="row 1"):
        validate_candles(df, "5m")


@pytest.mark.parametrize(("col", "value"), [("close", np.nan), ("open", -1.0), ("volume", -0.1), ("high", np.inf)])
def test_bad_values_rejected(col, value):
    df = candles(4)
    df.loc[1, col] = value
    if col in ("close", "open"):  # keep OHLC consistent so the value check is what fails
        df.loc[1, "low"] = min(df.loc[1, "low"], value) if np.isfinite(value) else df.loc[1, "low"]
    with pytest.raises(DataError, match=f"{col} value"):
        validate_candles(df, "5m")


def test_off_grid_floored_with_warning_or_rejected(caplog):
    df = candles(4, tf_ms=3_600_000)
    df.loc[2:, "ts"] += 28 * 60_000 + 14_800  # HH:28:14.8 like Binance 2018-02-09
    with caplog.at_level(logging.WARNING, logger="core.candles"):
        clean, report = validate_candles(df, "1h", off_grid="floor")
    assert report.floored == 2
    assert clean["ts"].tolist() == [T0 + i * 3_600_000 for i in range(4)]
    assert "floored 2 off-grid stamp(s)" in caplog.text and "02:28:14.800 UTC" in caplog.text
    assert "2 off-grid stamp(s) floored" in report.describe()
    with pytest.raises(DataError) as e:
        validate_candles(df, "1h", off_grid="reject")
    assert "2 candle(s) off the 1h grid" in e.value.problem and 'off_grid = "floor"' in (e.value.fix or "")


def test_flooring_into_an_existing_stamp_is_rejected():
    df = candles(3)
    df.loc[1, "ts"] = T0 + 60_000  # floors onto row 0
    with pytest.raises(DataError, match="after flooring 1 off-grid"):
        validate_candles(df, "5m", off_grid="floor")


def test_weekly_grid_is_monday():
    monday = 1_672_617_600_000  # 2023-01-02 00:00 UTC, a Monday
    clean, report = validate_candles(candles(3, tf_ms=7 * 86_400_000, start=monday), "1w", off_grid="reject")
    assert report.rows == 3
    with pytest.raises(DataError, match="off the 1w grid"):
        validate_candles(candles(3, tf_ms=7 * 86_400_000, start=T0), "1w", off_grid="reject")  # a Sunday


@pytest.mark.parametrize(("factor", "unit"), [(1000, "microseconds"), (1_000_000, "nanoseconds")])
def test_sub_ms_units_rejected_with_message(factor, unit):
    df = candles(3).assign(ts=lambda d: d.ts * factor)
    with pytest.raises(DataError) as e:
        validate_candles(df, "5m", source="store.parquet")
    assert f"look like {unit}" in e.value.problem and "aiotrade import" in (e.value.fix or "")


def test_seconds_rejected_with_message():
    with pytest.raises(DataError, match="look like seconds"):
        validate_candles(candles(3).assign(ts=lambda d: d.ts // 1000), "5m")


def test_datetime_ts_rejected_with_hint():
    df = candles(3).assign(ts=lambda d: pd.to_datetime(d.ts, unit="ms", utc=True))
    with pytest.raises(DataError, match="must be int64 epoch milliseconds"):
        validate_candles(df, "5m")


def test_epoch_to_ms_converts_each_row_by_magnitude():
    raw = np.array([T0 // 1000, T0, T0 * 1000 + 999, T0 * 1_000_000 + 5], dtype=np.int64)
    assert epoch_to_ms(raw).tolist() == [T0] * 4


def test_gap_report_counts_largest_and_where():
    df = candles(30).drop(index=[5, 6, 7, 20]).reset_index(drop=True)
    _, report = validate_candles(df, "5m")
    assert report.missing == 4 and len(report.gaps) == 2
    big = report.largest_gap
    assert big is not None and (big.after_ts, big.before_ts, big.missing) == (T0 + 4 * M5, T0 + 8 * M5, 3)
    assert "4 missing in 2 gap(s), largest 3: 2023-01-01 00:20 UTC -> 2023-01-01 00:40 UTC" in report.gap_summary()


@settings(max_examples=60, deadline=None)
@given(st.sets(st.integers(1, 198), max_size=60))
def test_gap_count_matches_removed_candles(removed):
    ts = np.delete(T0 + np.arange(200, dtype=np.int64) * M5, sorted(removed))
    gaps = find_gaps(ts, M5)
    runs = sum(1 for i in removed if i - 1 not in removed)
    assert sum(g.missing for g in gaps) == len(removed) and len(gaps) == runs


def test_fmt_ts_shows_seconds_only_when_present():
    assert fmt_ts(T0) == "2023-01-01 00:00 UTC" and fmt_ts(T0 + 14_800) == "2023-01-01 00:00:14.800 UTC"


@pytest.mark.shared_data
def test_binance_2018_off_grid_hours_are_floored(shared_ohlcv):
    rows = json.loads((shared_ohlcv / "2017-2020_1h" / "ETH_USDT-1h.json").read_text())
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    clean, report = validate_candles(df, "1h", off_grid="floor", source="ETH_USDT-1h.json")
    # Numbers from ../shared/data/ohlcv/README.md: 43 off-grid stamps, 98 missing in 16 gaps.
    assert report.floored == 43 and report.rows == 23_923
    assert report.missing == 98 and len(report.gaps) == 16
    big = report.largest_gap
    assert big is not None and big.describe() == "2018-02-08 00:00 UTC -> 2018-02-09 09:00 UTC (32 missing)"
    assert 1_518_166_800_000 in set(clean["ts"])  # 09:28:14.8 floored to 2018-02-09 09:00
    with pytest.raises(DataError, match="43 candle\\(s\\) off the 1h grid"):
        validate_candles(df, "1h", off_grid="reject")
