"""Real candles for the feature tests: the bundled sample (always there) and ../shared (skips without it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.store import CandleStore

SAMPLE_ROOT = Path(__file__).resolve().parents[2] / "pipeline" / "sample_data"


def load_sample(pair: str = "BTC/USDT") -> pd.DataFrame:
    return CandleStore(SAMPLE_ROOT).load("binance", pair, "5m")


def load_feather(path: Path) -> pd.DataFrame:
    """A freqtrade feather file as the candle contract (ts = open time in epoch ms)."""
    raw = pd.read_feather(path)
    ts = ((raw["date"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)).to_numpy(dtype=np.int64)
    return pd.DataFrame({"ts": ts, **{c: raw[c].to_numpy(dtype=np.float64) for c in ("open", "high", "low", "close", "volume")}})


@pytest.fixture(scope="session")
def sample_btc_5m() -> pd.DataFrame:
    return load_sample("BTC/USDT")


@pytest.fixture(scope="session")
def shared_eth_5m_2023(shared_ohlcv: Path) -> pd.DataFrame:
    """ETH/USDT 5m 2023, which holds the 2023-03-24 outage gap (16 missing candles)."""
    return load_feather(shared_ohlcv / "2023_1h_5m" / "ETH_USDT-5m.feather")


@pytest.fixture(scope="session")
def shared_doge_1m(shared_ohlcv: Path) -> pd.DataFrame:
    """DOGE/USDT 1m, 2021-04/05: a month of 1m candles with a 284-minute gap."""
    import json

    rows = json.loads((shared_ohlcv / "2021-04_05_1m_5m" / "DOGE_USDT-1m.json").read_text())
    df = pd.DataFrame(rows, columns=["ts", "open", "high", "low", "close", "volume"])
    df["ts"] = df["ts"].astype(np.int64)
    return df.astype({c: np.float64 for c in ("open", "high", "low", "close", "volume")})
