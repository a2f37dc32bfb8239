"""`tail_candles.gather_tails` lays out the same higher candles as `core.resample`, bit for bit, and
reads the open times like the full build's checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.candles import grid_origin_ms
from core.resample import resample
from core.timeframes import timeframe_ms
from features import candle_arrays
from features.tail_candles import OFF_GRID, OK, UNSORTED, gather_tails, pairwise_sum

CAP = 200  # candles per timeframe the tests ask for (the spec needs up to 108)


def gather(ts: np.ndarray, x: np.ndarray, tfs: list[str], base_tail: int = 108) -> tuple[int, np.ndarray, np.ndarray]:
    base_ms = 300_000
    tf_ms = np.array([timeframe_ms(tf) for tf in tfs], dtype=np.int64)
    tails = np.full((len(tfs) + 1, 5, CAP), -7.0)
    counts = np.zeros(len(tfs) + 1, dtype=np.int64)
    ratios = np.empty((2, len(tfs) + 1, CAP))
    origin = np.array([grid_origin_ms(tf) for tf in tfs], dtype=np.int64)
    tail_bars = np.full(len(tfs), len(ts), dtype=np.int64)  # the whole window: as many candles as CAP
    status = gather_tails(ts, x, base_ms, base_tail, tf_ms, tf_ms // base_ms, origin, tail_bars, tails, counts, ratios)
    return status, tails, counts


def test_pairwise_sum_is_numpy_s_add_reduceat_for_every_length():
    """numpy sums a reduceat segment as first + pairwise(rest); the order shows in the last bits,
    so magnitudes spread over 12 decades make any other order differ."""
    rng = np.random.default_rng(5)
    v = rng.random(10_081) * 10.0 ** rng.integers(-6, 6, 10_081)
    block = np.column_stack([v] * 5)[::-1]  # a strided column, as in a (n, 5) candle block
    col = np.ascontiguousarray(block[:, 4])
    for n in range(1, 10_081):
        a = int(rng.integers(0, 10_081 - n + 1))
        want = np.add.reduceat(col[a : a + n], [0])[0]
        got = col[a] + pairwise_sum(block[a + 1 : a + n, 4])
        assert got == want, (n, got, want)


@pytest.mark.parametrize("tf", ["15m", "1h", "4h", "1d", "1w"])
def test_higher_candles_equal_core_resample(sample_btc_5m, tf):
    df = sample_btc_5m.iloc[:20000]
    r = timeframe_ms(tf) // 300_000
    for start, stop in ((0, 20000), (1, 19_999), (7, 15_000 - 3), (r - 1, 12_345), (5000, 20000)):
        part = df.iloc[start:stop].reset_index(drop=True)
        assert_tails_equal_resample(part, tf)


def test_higher_candles_equal_core_resample_on_odd_volumes(sample_btc_5m):
    """Volumes with 8 decimals spread over many magnitudes (the rounding back to 8 places and the
    summation order both show), and volumes beyond 2**53 / 1e8 (kept unrounded)."""
    rng = np.random.default_rng(11)
    part = sample_btc_5m.iloc[3000:9000].reset_index(drop=True)
    part["volume"] = np.round(rng.random(len(part)) * 10.0 ** rng.integers(-4, 9, len(part)), 8)
    part.loc[100:160, "volume"] = 5e8
    for tf in ("15m", "1h", "4h", "1d"):
        assert_tails_equal_resample(part, tf)


@pytest.mark.parametrize("seed, bad", enumerate([np.nan, 0.0, -1.0, np.inf]))
def test_higher_candles_equal_core_resample_with_bad_values(sample_btc_5m, seed, bad):
    """A NaN anywhere in a bucket makes its high / low / volume NaN (np.maximum / minimum / add)."""
    rng = np.random.default_rng(seed)
    part = sample_btc_5m.iloc[6000:10000].reset_index(drop=True)
    cells = part[["open", "high", "low", "close", "volume"]].to_numpy().copy()
    for _ in range(60):
        cells[rng.integers(0, len(part)), rng.integers(0, 5)] = bad
    part[["open", "high", "low", "close", "volume"]] = cells
    for tf in ("15m", "1h", "4h"):
        assert_tails_equal_resample(part, tf)


def assert_tails_equal_resample(part: pd.DataFrame, tf: str) -> None:
    ts, x = candle_arrays(part)
    status, tails, counts = gather(ts, x, [tf])
    assert status == OK
    tf_ms, origin = timeframe_ms(tf), grid_origin_ms(tf)
    want_ts = (int(ts[-1]) + 300_000 - origin) // tf_ms * tf_ms + origin - tf_ms
    want = resample(part, "5m", tf)
    want = want[want["ts"] <= want_ts].iloc[-CAP:]
    m = int(counts[1])
    assert m == len(want) and (m == 0 or int(want["ts"].iloc[-1]) == want_ts)
    for j, name in enumerate(["open", "high", "low", "close", "volume"]):
        np.testing.assert_array_equal(tails[1, j, :m], want[name].to_numpy(), err_msg=f"{tf} {name}")


def test_base_tail_is_the_gap_free_run_s_last_candles(sample_btc_5m):
    ts, x = candle_arrays(sample_btc_5m.iloc[:1000])
    ts = ts.copy()
    ts[950:] += 600_000  # a two-bar gap before row 950: the run is the last 50 bars
    status, tails, counts = gather(ts, x, ["1h"])
    assert status == OK and counts[0] == 50
    np.testing.assert_array_equal(tails[0, :, :50], x[950:].T)
    # the run is bars 952..1001 of the 5m grid: the hours opening at bars 960, 972 and 984 are complete
    # and closed by the newest bar's close (bar 996's hour is still running)
    assert counts[1] == 3
    status, tails, counts = gather(ts[:950], x[:950], ["1h"])
    assert counts[0] == 108


def test_open_time_verdicts_match_the_full_build_s_checks():
    ts = np.arange(20, dtype=np.int64) * 300_000
    x = np.ones((20, 5))
    assert gather(ts, x, ["1h"])[0] == OK
    assert gather(ts[::-1].copy(), x, ["1h"])[0] == UNSORTED
    dup = ts.copy()
    dup[5] = dup[4]
    assert gather(dup, x, ["1h"])[0] == UNSORTED
    shifted = ts + 1
    assert gather(shifted, x, ["1h"])[0] == OFF_GRID
    one_off = ts.copy()
    one_off[3] += 7  # off the grid, but still sorted
    assert gather(one_off, x, ["1h"])[0] == OFF_GRID
    both = one_off.copy()
    both[15] = both[14]  # an unsorted pair later on wins, as in features.latest's checks
    assert gather(both, x, ["1h"])[0] == UNSORTED
