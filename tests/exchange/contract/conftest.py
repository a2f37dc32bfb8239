from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from exchange.ccxt_venue import CcxtVenue
from exchange.paper import PaperVenue
from tests.exchange.candle_fixtures import sample_5m
from tests.exchange.contract.harness import BALANCES, VENUE_KINDS, Harness, connect, make_emulator


@pytest.fixture(scope="session")
def candles() -> pd.DataFrame:
    """800 real 5m BTC/USDT candles (2023, bundled sample)."""
    return sample_5m("BTC/USDT").iloc[:800].reset_index(drop=True)


def build_harness(kind: str, candles: pd.DataFrame, tmp_path: Path) -> Harness:
    server, trading, faults = make_emulator(candles)
    if kind == "paper":
        data = CcxtVenue.connect("binance", base_url=server.url, rate_limit=False)
        paper = PaperVenue(data, tmp_path / "paper.db", balances=dict(BALANCES), timeframe="5m")
        return Harness(kind, paper, server, trading, faults, candles, paper=paper, data=data)
    return Harness(kind, connect(kind, server.url), server, trading, faults, candles)


@pytest.fixture(params=VENUE_KINDS)
def h(request: pytest.FixtureRequest, candles: pd.DataFrame, tmp_path: Path) -> Iterator[Harness]:
    harness = build_harness(request.param, candles, tmp_path)
    yield harness
    harness.close()


@pytest.fixture(params=[k for k in VENUE_KINDS if k != "paper"])
def emu_h(request: pytest.FixtureRequest, candles: pd.DataFrame, tmp_path: Path) -> Iterator[Harness]:
    """The ccxt venues only (emulator-side errors and faults)."""
    harness = build_harness(request.param, candles, tmp_path)
    yield harness
    harness.close()
