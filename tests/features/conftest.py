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
