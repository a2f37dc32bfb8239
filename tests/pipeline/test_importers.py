from __future__ import annotations

import json
import subprocess
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from core.errors import ConfigError, DataError
from core.store import CandleStore
from pipeline.importers import import_path, names_from_filename, read_candle_file
from tests.core.test_candles import M5, T0, candles
from tests.pipeline.cli_runner import run_cli

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(tmp_path):
    return CandleStore(tmp_path / "store")


def write_json(path: Path, df: pd.DataFrame) -> Path:
    path.write_text(json.dumps(df.astype({"ts": "int64"}).values.tolist()))
    return path


def binance_csv(df: pd.DataFrame, unit_factor: list[int]) -> str:
    lines = []
    for (_, r), f in zip(df.iterrows(), unit_factor, strict=True):
        open_t = int(r.ts) * f
        close_t = open_t + M5 * f - 1
        lines.append(f"{open_t},{r.open},{r.high},{r.low},{r.close},{r.volume},{close_t},1.0,10,0.5,0.5,0")
    return "\n".join(lines) + "\n"


def test_freqtrade_json_infers_pair_and_timeframe(store, tmp_path):
    f = write_json(tmp_path / "BTC_USDT-5m.json", candles(20))
    out = import_path(store, f, "binance")
    assert [(p.pair, p.timeframe, p.parsed.fmt) for p in out.prepared] == [("BTC/USDT", "5m", "freqtrade-json")]
    pd.testing.assert_frame_equal(store.load("binance", "BTC/USDT", "5m"), candles(20))
    assert import_path(store, f, "binance").written[0].changed is False  # idempotent


def test_freqtrade_feather_and_parquet(store, tmp_path):
    df = candles(10)
    ft = df.assign(date=pd.to_datetime(df.ts, unit="ms", utc=True)).drop(columns="ts")
    ft[["date", "open", "high", "low", "close", "volume"]].to_feather(tmp_path / "ETH_USDT-5m.feather")
    import_path(store, tmp_path / "ETH_USDT-5m.feather", "binance")
    pd.testing.assert_frame_equal(store.load("binance", "ETH/USDT", "5m"), df)
    ft.to_parquet(tmp_path / "SOL_USDT-5m.parquet")
    import_path(store, tmp_path / "SOL_USDT-5m.parquet", "bitget")
    pd.testing.assert_frame_equal(store.load("bitget", "SOL/USDT", "5m"), df)


def test_binance_csv_detects_microseconds_per_row_and_timeframe(store, tmp_path):
    df = candles(6)
    f = tmp_path / "BTCUSDT-5m-2025-01.csv"
    f.write_text(binance_csv(df, [1, 1, 1, 1000, 1000, 1000]))  # the 2025 switch inside one file
    parsed = read_candle_file(f)
    assert (parsed.fmt, parsed.pair, parsed.timeframe, parsed.converted) == ("binance-csv", "BTC/USDT", "5m", {"us": 3})
    import_path(store, f, "binance")
    pd.testing.assert_frame_equal(store.load("binance", "BTC/USDT", "5m"), df)


def test_binance_csv_timeframe_from_close_time_and_zip(store, tmp_path):
    df = candles(4)
    z = tmp_path / "klines.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("klines.csv", binance_csv(df, [1000] * 4))
    parsed = read_candle_file(z)
    assert (parsed.timeframe, parsed.pair) == ("5m", None)
    with pytest.raises(ConfigError, match="cannot tell the pair"):
        import_path(store, z, "binance")
    import_path(store, z, "binance", pair="DOGE/USDT")
    assert store.last_ts("binance", "DOGE/USDT", "5m") == T0 + 3 * M5


def test_generic_csv_with_iso_dates_and_epoch_seconds(store, tmp_path):
    df = candles(5)
    iso = df.assign(Date=pd.to_datetime(df.ts, unit="ms", utc=True).dt.strftime("%Y-%m-%dT%H:%M:%SZ")).drop(columns="ts")
    iso[["Date", "Open", "High", "Low", "Close", "Volume"]] = iso[["Date", "open", "high", "low", "close", "volume"]]
    iso[["Date", "Open", "High", "Low", "Close", "Volume"]].to_csv(tmp_path / "a.csv", index=False)
    import_path(store, tmp_path / "a.csv", "binance", pair="BTC/USDT", timeframe="5m")
    pd.testing.assert_frame_equal(store.load("binance", "BTC/USDT", "5m"), df)
    secs = df.assign(open_time=df.ts // 1000).drop(columns="ts")
    secs.to_csv(tmp_path / "ETH_USDT-5m.csv", index=False)
    out = import_path(store, tmp_path / "ETH_USDT-5m.csv", "binance")
    assert out.prepared[0].parsed.converted == {"s": 5}
    pd.testing.assert_frame_equal(store.load("binance", "ETH/USDT", "5m"), df)


def test_csv_with_bom_and_crlf(store, tmp_path):
    df = candles(4)
    text = df.to_csv(index=False, lineterminator="\r\n")
    (tmp_path / "BTC_USDT-5m.csv").write_bytes(("\ufeff" + text).encode("utf-8"))
    import_path(store, tmp_path / "BTC_USDT-5m.csv", "binance")
    pd.testing.assert_frame_equal(store.load("binance", "BTC/USDT", "5m"), df)


def test_csv_with_wrong_columns_lists_found_and_needed(store, tmp_path):
    (tmp_path / "BTC_USDT-5m.csv").write_text("time,o,h,l,c\n1672531200000,1,2,0.5,1.5\n")
    with pytest.raises(DataError) as e:
        import_path(store, tmp_path / "BTC_USDT-5m.csv", "binance")
    assert "missing column(s): open, high, low, close, volume; found: time, o, h, l, c" in e.value.problem
    assert not store.path("binance", "BTC/USDT", "5m").exists()


@pytest.mark.parametrize("bad", ["unsorted", "duplicated"])
def test_unsorted_or_duplicated_file_changes_nothing(store, tmp_path, bad):
    store.write("binance", "BTC/USDT", "5m", candles(5))
    before = store.path("binance", "BTC/USDT", "5m").read_bytes()
    df = candles(10)
    df = df.iloc[[0, 1, 2, 4, 3, 5]] if bad == "unsorted" else pd.concat([df.iloc[:4], df.iloc[3:4], df.iloc[4:]])
    f = write_json(tmp_path / "BTC_USDT-5m.json", df)
    with pytest.raises(DataError) as e:
        import_path(store, f, "binance")
    assert str(f) in e.value.problem and ("out of order" if bad == "unsorted" else "1 duplicated") in e.value.problem
    assert store.path("binance", "BTC/USDT", "5m").read_bytes() == before


def test_folder_imports_every_file_and_filters(store, tmp_path):
    write_json(tmp_path / "BTC_USDT-5m.json", candles(10))
    write_json(tmp_path / "BTC_USDT-1h.json", candles(10, tf_ms=3_600_000))
    write_json(tmp_path / "ETH_USDT-5m.json", candles(10))
    (tmp_path / "README.md").write_text("notes")
    (tmp_path / "older").mkdir()
    out = import_path(store, tmp_path, "binance", timeframe="5m")
    assert sorted((p.pair, p.timeframe) for p in out.prepared) == [("BTC/USDT", "5m"), ("ETH/USDT", "5m")]
    assert {p.name for p, _ in out.skipped} == {"README.md", "BTC_USDT-1h.json", "older"}
    out = import_path(store, tmp_path, "binance")
    assert len(out.prepared) == 3 and store.exists("binance", "BTC/USDT", "1h")


def test_one_bad_file_in_a_folder_writes_nothing(store, tmp_path):
    write_json(tmp_path / "AAA_USDT-5m.json", candles(10))
    (tmp_path / "ZZZ_USDT-5m.json").write_text("[[1672531200000, 1, 2]")  # truncated JSON
    with pytest.raises(DataError, match="ZZZ_USDT-5m.json: cannot be read"):
        import_path(store, tmp_path, "binance")
    assert store.datasets() == []


def test_option_contradicting_the_file_name_is_an_error(store, tmp_path):
    f = write_json(tmp_path / "BTC_USDT-5m.json", candles(5))
    with pytest.raises(ConfigError) as e:
        import_path(store, f, "binance", timeframe="1h")
    assert "holds 5m candles" in e.value.problem and "--timeframe 5m" in (e.value.fix or "")


def test_wrong_timeframe_spacing_is_caught(store, tmp_path):
    f = write_json(tmp_path / "hourly.json", candles(10, tf_ms=3_600_000))
    with pytest.raises(DataError) as e:
        import_path(store, f, "binance", pair="BTC/USDT", timeframe="5m")
    assert "no two candles are one 5m apart" in e.value.problem and "--timeframe 1h" in (e.value.fix or "")


def test_other_bad_inputs(store, tmp_path):
    (tmp_path / "x.csv").write_text("1672531200000,1,2,0.5,1.5,3\n")
    with pytest.raises(DataError, match="without a header row and 6 columns"):
        import_path(store, tmp_path / "x.csv", "binance", pair="BTC/USDT", timeframe="5m")
    (tmp_path / "y.csv").write_text("ts,open,high,low,close,volume\n1672531200000,1,2,abc,1.5,3\n")
    with pytest.raises(DataError, match="column low has a non-number at row 0: 'abc'"):
        import_path(store, tmp_path / "y.csv", "binance", pair="BTC/USDT", timeframe="5m")
    (tmp_path / "BTC_USDT-5m.feather").write_bytes(b"ARROW1\x00\x00 truncated")
    with pytest.raises(DataError, match="cannot be read as feather"):
        import_path(store, tmp_path / "BTC_USDT-5m.feather", "binance")
    with pytest.raises(ConfigError, match="must look like 'BTC/USDT'"):
        import_path(store, tmp_path / "x.csv", "binance", pair="btcusdt")
    (tmp_path / "ETH_USDT-5m.json").write_text("[]")
    (tmp_path / "SOL_USDT-5m.csv").write_text("ts,open,high,low,close,volume\n")
    for name in ("ETH_USDT-5m.json", "SOL_USDT-5m.csv"):
        with pytest.raises(DataError, match="holds no candles"):
            import_path(store, tmp_path / name, "binance")
    with pytest.raises(DataError, match="no such file"):
        import_path(store, tmp_path / "nope.json", "binance")


def test_off_grid_policy(store, tmp_path):
    df = candles(5)
    df.loc[4, "ts"] += 14_800
    f = write_json(tmp_path / "BTC_USDT-5m.json", df)
    with pytest.raises(DataError, match="off the 5m grid"):
        import_path(store, f, "binance", off_grid="reject")
    out = import_path(store, f, "binance", off_grid="floor")
    assert out.prepared[0].report.floored == 1 and store.last_ts("binance", "BTC/USDT", "5m") == T0 + 4 * M5


def test_names_from_filename():
    assert names_from_filename(Path("BTC_USDT-5m.json")) == ("BTC/USDT", "5m")
    assert names_from_filename(Path("ETH_BTC-1h.json.gz")) == ("ETH/BTC", "1h")
    assert names_from_filename(Path("SOLFDUSD-1m-2025-03-01.zip")) == ("SOL/FDUSD", "1m")
    assert names_from_filename(Path("candles.csv")) == (None, None)


@pytest.mark.shared_data
def test_import_shared_folder_selects_5m(store, shared_ohlcv):
    out = import_path(store, shared_ohlcv / "2023_1h_5m", "binance", timeframe="5m")
    assert sorted(p.pair for p in out.prepared) == ["BTC/USDT", "ETH/USDT"]
    rep = out.prepared[0].report
    # ../shared/data/ohlcv/README.md: 104,816 rows, 16 missing in one gap after 2023-03-24 12:35.
    assert rep.rows == 104_816 and rep.missing == 16 and len(rep.gaps) == 1


# ---- through the CLI -------------------------------------------------------------------------


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # embedded defaults: store in ./user_data/candles

    def run(*args: str) -> tuple[int, str, str]:
        return run_cli(monkeypatch, capsys, *args, width=500)

    return run


def test_cli_import_list_check(cli, tmp_path):
    write_json(tmp_path / "BTC_USDT-5m.json", candles(30).drop(index=[7, 8]))
    code, out, _ = cli("import", str(tmp_path / "BTC_USDT-5m.json"))
    assert code == 0 and "28 new, 0 replaced" in out and "2 missing in 1 gap(s)" in out
    code, out, _ = cli("import", str(tmp_path / "BTC_USDT-5m.json"))
    assert code == 0 and "already stored, unchanged" in out
    code, out, _ = cli("data", "list")
    assert code == 0 and "BTC/USDT" in out and "28" in out and "2 in 1 (max 2)" in out
    code, out, _ = cli("data", "check")
    assert code == 0 and "1 dataset(s) OK" in out and "largest gap 2023-01-01 00:30 UTC -> 2023-01-01 00:45 UTC" in out


def test_cli_bad_inputs_give_one_message_and_change_nothing(cli, tmp_path):
    write_json(tmp_path / "BTC_USDT-5m.json", candles(5))
    assert cli("import", str(tmp_path / "BTC_USDT-5m.json"))[0] == 0
    stored = tmp_path / "user_data" / "candles" / "binance" / "BTC_USDT" / "5m.parquet"
    before = stored.read_bytes()
    (tmp_path / "cols.csv").write_text("when,price\n1,2\n")
    (tmp_path / "dup").mkdir()
    dup = write_json(tmp_path / "dup" / "BTC_USDT-5m.json", pd.concat([candles(5), candles(1)]))
    cases = [
        (["import", str(tmp_path / "cols.csv"), "--pair", "BTC/USDT", "--timeframe", "5m"], "missing column(s)"),
        (["import", str(dup)], "candles not sorted and unique (1 duplicated, 1 out of order)"),
        (["import", str(tmp_path / "BTC_USDT-5m.json"), "--exchange", "kraken"], "unknown exchange 'kraken'"),
        (["import", str(tmp_path / "BTC_USDT-5m.json"), "--timeframe", "7m"], "unknown timeframe '7m'"),
    ]
    for args, expected in cases:
        code, out, err = cli(*args)
        assert code == 2, args
        assert expected in err and "fix:" in err and "Traceback" not in err + out, args
        assert err.count("error:") == 1
    assert stored.read_bytes() == before


def test_cli_check_reports_truncated_and_microsecond_files(cli, tmp_path):
    write_json(tmp_path / "BTC_USDT-5m.json", candles(50))
    write_json(tmp_path / "ETH_USDT-5m.json", candles(50))
    cli("import", str(tmp_path))
    store_root = tmp_path / "user_data" / "candles" / "binance"
    btc = store_root / "BTC_USDT" / "5m.parquet"
    btc.write_bytes(btc.read_bytes()[:200])
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pandas(candles(5).assign(ts=lambda d: d.ts * 1000), preserve_index=False), store_root / "ETH_USDT" / "5m.parquet")
    code, out, err = cli("data", "check")
    assert code == 2 and "2 of 2 dataset(s) invalid" in err and "Traceback" not in err
    assert "truncated or corrupt" in out and "microseconds" in out and "INVALID" in out


def test_real_entry_point_prints_no_traceback(tmp_path):
    (tmp_path / "BTC_USDT-5m.csv").write_text("date,close\n2023-01-01,1\n")
    proc = subprocess.run(
        [str(REPO / ".venv" / "bin" / "aiotrade"), "import", "BTC_USDT-5m.csv"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, env={"COLUMNS": "300", "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 2, proc.stderr
    assert "missing column(s): open, high, low, volume; found: date, close" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "user_data").exists()
