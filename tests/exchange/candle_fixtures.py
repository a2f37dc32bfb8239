"""Real candles for emulator and download tests: the bundled sample (always there) and small
slices of ../shared 1m data (tests using them take the `shared_ohlcv` fixture, which skips)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pandas as pd

from core.candles import COLUMNS
from core.store import CandleStore

SAMPLE_ROOT = Path(__file__).resolve().parents[2] / "pipeline" / "sample_data"
SHARED_1M = "2021-04_05_1m_5m"


@cache
def sample_5m(pair: str = "BTC/USDT") -> pd.DataFrame:
    """The bundled 2023 5m candles (about 23,600 rows)."""
    return CandleStore(SAMPLE_ROOT).load("binance", pair, "5m")


def shared_1m(shared_ohlcv: Path, rows: int, pair: str = "BTC_USDT", offset: int = 0) -> pd.DataFrame:
    """The first `rows` 1m candles (after `offset`) of a freqtrade JSON file in ../shared."""
    return (
        _shared_1m_all(str(shared_ohlcv / SHARED_1M / f"{pair}-1m.json"))
        .iloc[offset : offset + rows]
        .reset_index(drop=True)
    )


@cache
def _shared_1m_all(path: str) -> pd.DataFrame:
    with open(path, encoding="utf-8") as f:
        df = pd.DataFrame(json.load(f), columns=list(COLUMNS))
    return df.astype({"ts": "int64", **{c: "float64" for c in COLUMNS[1:]}})
