from __future__ import annotations

import hashlib
import io
import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from core.config import Config
from core.resample import resample
from core.store import CandleStore
from pipeline.importers import read_candle_file
from pipeline.quickstart import STEPS, run_quickstart, sample_store

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "pipeline" / "sample_data"
START_MS, LAST_MS = 1_672_531_200_000, 1_679_615_700_000  # 2023-01-01 00:00 .. 2023-03-23 23:55 UTC


def cfg(tmp_path) -> Config:
    return Config.model_validate({"data": {"store_dir": str(tmp_path / "store")}})


def console() -> Console:
    return Console(width=200, record=True, file=io.StringIO())


def test_sample_loads_without_gaps_on_the_documented_span():
    with sample_store() as sample:
        infos = sample.datasets()
        assert [(i.exchange, i.pair, i.timeframe) for i in infos] == [("binance", "BTC/USDT", "5m"), ("binance", "ETH/USDT", "5m")]
        for info in infos:
            assert info.error is None and info.report is not None
            assert (info.report.first_ts, info.report.last_ts, info.report.rows) == (START_MS, LAST_MS, 23_616)
            assert info.report.gaps == ()


def test_sample_readme_states_the_shipped_hashes_and_rows():
    readme = (SAMPLE_DIR / "README.md").read_text()
    for pair in ("BTC_USDT", "ETH_USDT"):
        path = SAMPLE_DIR / "binance" / pair / "5m.parquet"
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        assert re.search(rf"{sha}\s+binance/{pair}/5m.parquet", readme), f"README sha256 for {pair} is stale"
    assert "23,616" in readme and "019e541ccb2dab68bb5eb2a78f2ad57f616cb4f7" in readme and "MIT" in readme


@pytest.mark.shared_data
@pytest.mark.parametrize("base", ["BTC", "ETH"])
def test_sample_is_the_shared_data_and_resamples_to_binance_1h(shared_ohlcv, base):
    with sample_store() as sample:
        ours = sample.load("binance", f"{base}/USDT", "5m")
    src = read_candle_file(shared_ohlcv / "2023_1h_5m" / f"{base}_USDT-5m.feather").frame
    src = src[(src.ts >= START_MS) & (src.ts <= LAST_MS)].reset_index(drop=True)
    pd.testing.assert_frame_equal(ours, src, check_exact=True)
    h1 = read_candle_file(shared_ohlcv / "2023_1h_5m" / f"{base}_USDT-1h.feather").frame
    h1 = h1[(h1.ts >= START_MS) & (h1.ts <= LAST_MS)].reset_index(drop=True)
    pd.testing.assert_frame_equal(resample(ours, "5m", "1h"), h1, check_exact=True)
    assert len(h1) == 23_616 // 12


def test_quickstart_imports_and_summarises(tmp_path):
    ctx = run_quickstart(cfg(tmp_path), console())
    assert [(r.pair, r.rows, r.gaps) for r in ctx.summary] == [("BTC/USDT", 23_616, "none"), ("ETH/USDT", 23_616, "none")]
    assert ctx.summary[0].resampled_rows == {"15m": 23_616 // 3, "1h": 23_616 // 12, "4h": 23_616 // 48}
    stored = CandleStore(tmp_path / "store").load("binance", "BTC/USDT", "5m")
    with sample_store() as sample:
        pd.testing.assert_frame_equal(stored, sample.load("binance", "BTC/USDT", "5m"))


def test_quickstart_twice_changes_nothing(tmp_path):
    run_quickstart(cfg(tmp_path), console())
    files = sorted((tmp_path / "store").rglob("*"))
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in files if p.is_file()}
    ctx = run_quickstart(cfg(tmp_path), console())
    assert all(not res.changed for _, res in ctx.imported) and len(ctx.imported) == 2
    assert sorted((tmp_path / "store").rglob("*")) == files
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in files if p.is_file()} == before


def test_steps_are_an_extensible_list(tmp_path):
    seen = []
    steps = [*STEPS, ("later work", lambda ctx: seen.append([r.pair for r in ctx.summary]))]
    con = console()
    run_quickstart(cfg(tmp_path), con, steps)
    assert seen == [["BTC/USDT", "ETH/USDT"]]
    assert "step 3/3: later work" in con.export_text()


def test_cli_quickstart_prints_the_table(tmp_path):
    proc = subprocess.run(
        [str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "aiotrade"), "quickstart", "--data-only"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr
    lines = [ln.split() for ln in proc.stdout.splitlines() if ln.startswith(("BTC/USDT", "ETH/USDT"))]
    assert [ln[:3] for ln in lines] == [["BTC/USDT", "5m", "23616"], ["ETH/USDT", "5m", "23616"]]
    assert lines[0][-4:] == ["none", "7872", "1968", "492"]
    assert (tmp_path / "user_data" / "candles" / "binance" / "ETH_USDT" / "5m.parquet").is_file()
