"""Shared fixtures: where the real candles of ../shared live, and a skip when they are absent."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_OHLCV = REPO_ROOT.parent / "shared" / "data" / "ohlcv" / "binance"


@pytest.fixture(scope="session")
def shared_ohlcv() -> Path:
    """../shared/data/ohlcv/binance; tests that need more than the bundled sample skip without it."""
    if not SHARED_OHLCV.is_dir():
        pytest.skip(f"real candles not found at {SHARED_OHLCV} (CI has them; a fresh clone may not)")
    return SHARED_OHLCV
