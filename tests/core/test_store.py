from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.errors import ConfigError, DataError
from core.store import CandleStore, dir_pair, pair_dir
from tests.core.test_candles import M5, T0, candles


@pytest.fixture
def store(tmp_path):
    return CandleStore(tmp_path / "candles")


def test_round_trip_and_layout(store, tmp_path):
    df = candles(50)
    res = store.write("binance", "BTC/USDT", "5m", df)
    assert res.path == tmp_path / "candles" / "binance" / "BTC_USDT" / "5m.parquet"
    assert (res.rows_before, res.rows_after, res.added, res.replaced) == (0, 50, 50, 0)
    back = store.load("binance", "BTC/USDT", "5m")
    pd.testing.assert_frame_equal(back, df)
    assert store.last_ts("binance", "BTC/USDT", "5m") == T0 + 49 * M5
    assert store.last_ts("binance", "ETH/USDT", "5m") is None


def test_load_range_is_half_open(store):
    store.write("binance", "BTC/USDT", "5m", candles(20))
    part = store.load("binance", "BTC/USDT", "5m", start_ms=T0 + 5 * M5, end_ms=T0 + 8 * M5)
    assert part["ts"].tolist() == [T0 + 5 * M5, T0 + 6 * M5, T0 + 7 * M5]
    assert part.index.tolist() == [0, 1, 2]
    assert len(store.load("binance", "BTC/USDT", "5m", start_ms=T0 + 15 * M5)) == 5
    assert len(store.load("binance", "BTC/USDT", "5m", end_ms=T0)) == 0


def test_second_identical_write_changes_nothing(store):
    res = store.write("binance", "BTC/USDT", "5m", candles(30))
    before = (res.path.read_bytes(), res.path.stat().st_mtime_ns)
    again = store.write("binance", "BTC/USDT", "5m", candles(30).iloc[10:20])
    assert not again.changed and (again.added, again.replaced, again.rows_after) == (0, 0, 30)
    assert (res.path.read_bytes(), res.path.stat().st_mtime_ns) == before


def test_merge_new_wins_and_counts(store):
    store.write("binance", "BTC/USDT", "5m", candles(10))
    newer = candles(10, start=T0 + 5 * M5)  # overlaps rows 5..9, adds 10..14
    newer["volume"] = 999.0
    res = store.write("binance", "BTC/USDT", "5m", newer)
    assert (res.added, res.replaced, res.rows_after) == (5, 5, 15)
    back = store.load("binance", "BTC/USDT", "5m")
    assert back["ts"].tolist() == [T0 + i * M5 for i in range(15)]
    assert (back["volume"].iloc[5:] == 999.0).all() and (back["volume"].iloc[:5] != 999.0).all()


def test_older_chunk_written_after_newer_is_merged_in_order(store):
    store.write("binance", "BTC/USDT", "5m", candles(10, start=T0 + 20 * M5))
    res = store.write("binance", "BTC/USDT", "5m", candles(10))
    back, report = store.load_with_report("binance", "BTC/USDT", "5m")
    assert res.added == 10 and back["ts"].is_monotonic_increasing and len(back) == 20
    assert report.missing == 10 and len(report.gaps) == 1


@pytest.mark.parametrize("bad", ["duplicated", "microseconds", "ohlc"])
def test_bad_write_raises_and_leaves_file_unchanged(store, bad):
    res = store.write("binance", "BTC/USDT", "5m", candles(10))
    before = res.path.read_bytes()
    df = candles(10, start=T0 + 10 * M5)
    if bad == "duplicated":
        df.loc[3, "ts"] = df.loc[2, "ts"]
    elif bad == "microseconds":
        df["ts"] *= 1000
    else:
        df.loc[4, "high"] = df.loc[4, "low"] - 1
    with pytest.raises(DataError):
        store.write("binance", "BTC/USDT", "5m", df)
    assert res.path.read_bytes() == before
    assert sorted(p.name for p in res.path.parent.iterdir()) == ["5m.parquet"]


def test_off_grid_write_is_rejected_unless_floor_asked(store):
    df = candles(4)
    df.loc[3, "ts"] += 1000
    with pytest.raises(DataError, match="off the 5m grid"):
        store.write("binance", "BTC/USDT", "5m", df)
    res = store.write("binance", "BTC/USDT", "5m", df, off_grid="floor")
    assert res.report.floored == 1 and store.last_ts("binance", "BTC/USDT", "5m") == T0 + 3 * M5


def test_truncated_file_gives_one_clear_error_and_is_not_overwritten(store):
    res = store.write("binance", "BTC/USDT", "5m", candles(100))
    data = res.path.read_bytes()
    res.path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError) as e:
        store.load("binance", "BTC/USDT", "5m")
    assert str(res.path) in e.value.problem and "truncated or corrupt" in e.value.problem
    assert "download or import" in (e.value.fix or "") and str(res.path) in (e.value.fix or "")
    with pytest.raises(DataError, match="truncated or corrupt"):
        store.write("binance", "BTC/USDT", "5m", candles(5, start=T0 + 100 * M5))
    assert res.path.read_bytes() == data[: len(data) // 2]
    with pytest.raises(DataError, match="truncated or corrupt"):
        store.last_ts("binance", "BTC/USDT", "5m")


def test_foreign_parquet_schema_rejected(store):
    path = store.path("binance", "BTC/USDT", "5m")
    path.parent.mkdir(parents=True)
    pq.write_table(pa.table({"date": pd.to_datetime([T0], unit="ms"), "close": [1.0]}), path)
    with pytest.raises(DataError, match="not a candle file of this store"):
        store.load("binance", "BTC/USDT", "5m")


def test_stored_microseconds_are_rejected_on_load(store):
    path = store.path("binance", "BTC/USDT", "5m")
    path.parent.mkdir(parents=True)
    df = candles(5).assign(ts=lambda d: d.ts * 1000)
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path)
    with pytest.raises(DataError) as e:
        store.load("binance", "BTC/USDT", "5m")
    assert "stored file is invalid" in e.value.problem and "microseconds" in e.value.problem


def test_file_moved_to_the_wrong_timeframe_is_caught(store):
    res = store.write("binance", "BTC/USDT", "5m", candles(5))
    wrong = store.path("binance", "BTC/USDT", "15m")
    wrong.write_bytes(res.path.read_bytes())
    with pytest.raises(DataError, match="holds 5m candles, not 15m"):
        store.load("binance", "BTC/USDT", "15m")


def test_crash_mid_write_keeps_the_old_file(store, monkeypatch):
    res = store.write("binance", "BTC/USDT", "5m", candles(10))
    before = res.path.read_bytes()

    def crash(table, where, **kw):
        where.write(b"PAR1 half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(pq, "write_table", crash)
    with pytest.raises(KeyboardInterrupt):
        store.write("binance", "BTC/USDT", "5m", candles(10, start=T0 + 10 * M5))
    assert res.path.read_bytes() == before
    assert [p.name for p in res.path.parent.iterdir()] == ["5m.parquet"]


def test_missing_dataset_says_how_to_get_it(store):
    with pytest.raises(DataError) as e:
        store.load("binance", "SOL/USDT", "1h")
    assert "no candles stored for binance SOL/USDT 1h" in e.value.problem and "aiotrade download" in (e.value.fix or "")


def test_names_are_checked(store):
    with pytest.raises(ConfigError, match="must look like 'BTC/USDT'"):
        store.path("binance", "btc-usdt", "5m")
    with pytest.raises(ConfigError, match="unknown timeframe '7m'"):
        store.path("binance", "BTC/USDT", "7m")
    with pytest.raises(ConfigError, match="not a valid name"):
        store.path("../etc", "BTC/USDT", "5m")
    assert pair_dir("BTC/USDT") == "BTC_USDT" and dir_pair("BTC_USDT") == "BTC/USDT"


def test_datasets_lists_reports_and_errors(store):
    store.write("binance", "BTC/USDT", "5m", candles(30).drop(index=[10, 11]))
    store.write("bitget", "ETH/USDT", "1h", candles(5, tf_ms=3_600_000))
    bad = store.write("binance", "ETH/USDT", "5m", candles(5)).path
    bad.write_bytes(b"not parquet")
    (bad.parent / ".5m.parquet.abc.tmp").write_bytes(b"stray temp file")
    infos = {(i.exchange, i.pair, i.timeframe): i for i in store.datasets()}
    assert set(infos) == {("binance", "BTC/USDT", "5m"), ("binance", "ETH/USDT", "5m"), ("bitget", "ETH/USDT", "1h")}
    btc = infos["binance", "BTC/USDT", "5m"]
    assert btc.rows == 28 and btc.report is not None and btc.report.missing == 2 and btc.error is None
    assert (btc.first_ts, btc.last_ts, [g.missing for g in btc.gaps]) == (T0, T0 + 29 * M5, [2])
    assert infos["bitget", "ETH/USDT", "1h"].rows == 5
    eth = infos["binance", "ETH/USDT", "5m"]
    assert eth.report is None and eth.error is not None and "truncated or corrupt" in eth.error


def test_written_file_is_world_readable_and_loads_fast_path_types(store):
    res = store.write("binance", "BTC/USDT", "5m", candles(3))
    assert oct(os.stat(res.path).st_mode & 0o777) == "0o644"
    schema = pq.read_schema(res.path)
    assert schema.field("ts").type == pa.int64() and schema.metadata[b"aiotrade.timeframe"] == b"5m"
    assert np.issubdtype(store.load("binance", "BTC/USDT", "5m")["ts"].dtype, np.int64)
