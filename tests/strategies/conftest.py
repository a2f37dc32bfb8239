"""Real candles for the strategy tests: ../shared's Binance files (via `shared_ohlcv`), else the sample."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import REPO_ROOT

SAMPLE = REPO_ROOT / "pipeline" / "sample_data" / "binance" / "BTC_USDT" / "5m.parquet"


def read_freqtrade(path: Path) -> pd.DataFrame:
    """A freqtrade feather/json file as the project's candle frame (ts ms + float OHLCV)."""
    if path.suffix == ".json":
        df = pd.DataFrame(json.loads(path.read_text()), columns=["ts", "open", "high", "low", "close", "volume"])
        df["ts"] = df["ts"].astype("int64")
    else:
        raw = pd.read_feather(path)
        df = pd.DataFrame({"ts": raw["date"].astype("int64") // 10**6,
                           **{k: raw[k].to_numpy() for k in ("open", "high", "low", "close", "volume")}})
    return df.astype({c: "float64" for c in ("open", "high", "low", "close", "volume")})


@pytest.fixture(scope="session")
def btc_5m(request) -> pd.DataFrame:
    """BTC/USDT 5m, 2023 (104,816 real candles) from ../shared, else the bundled sample."""
    shared = REPO_ROOT.parent / "shared" / "data" / "ohlcv" / "binance" / "2023_1h_5m" / "BTC_USDT-5m.feather"
    if shared.is_file():
        return read_freqtrade(shared)
    if SAMPLE.is_file():
        return pd.read_parquet(SAMPLE)
    pytest.skip("no real candles: neither ../shared/data/ohlcv nor the bundled sample is present")


@pytest.fixture(scope="session")
def doge_1m(shared_ohlcv: Path) -> pd.DataFrame:
    """DOGE/USDT 1m, 2021-04/05 (42,915 real candles, the May crash; lot 1, tick 0.00001)."""
    return read_freqtrade(shared_ohlcv / "2021-04_05_1m_5m" / "DOGE_USDT-1m.json")
