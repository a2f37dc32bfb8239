"""The runner's candle window: what the policy sees is exactly the newest closed candles, as arrays."""

from __future__ import annotations

import numpy as np

from live.candles import CandleWindow

STEP = 300_000  # 5m in ms


def _rows(first: int, n: int) -> np.ndarray:
    ts = (np.arange(first, first + n) * STEP).astype(np.float64)
    price = 100.0 + np.arange(first, first + n, dtype=np.float64)
    return np.column_stack([ts, price, price + 1, price - 1, price + 0.5, np.full(n, 7.0)])


def test_arrays_are_the_last_n_candles_up_to_the_bar_and_survive_the_ring_shifting() -> None:
    win = CandleWindow(keep_bars=10)
    win.extend_rows(_rows(0, 15))  # more than the window keeps
    win.extend_rows(_rows(10, 12))  # overlap: only 15..21 are new
    assert len(win) <= 2 * win.keep_bars and win.last_ts == 21 * STEP
    ts, ohlcv = win.arrays(20 * STEP, 4)
    assert ts.tolist() == [17 * STEP, 18 * STEP, 19 * STEP, 20 * STEP]
    assert ohlcv.shape == (4, 5) and ohlcv[:, 0].tolist() == [117.0, 118.0, 119.0, 120.0]
    assert ohlcv[-1].tolist() == [120.0, 121.0, 119.0, 120.5, 7.0]
    # Copies: appending (which moves the ring's rows) must not change what a predict call was given.
    win.extend_rows(_rows(22, 30))
    assert ts[-1] == 20 * STEP and ohlcv[-1, 3] == 120.5


def test_a_bar_the_window_does_not_hold_gives_nothing() -> None:
    win = CandleWindow(keep_bars=5)
    win.extend_rows(_rows(0, 5))
    ts, ohlcv = win.arrays(99 * STEP, 3)
    assert len(ts) == 0 and ohlcv.shape == (0, 5)
