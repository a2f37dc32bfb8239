"""Walk-forward splits: train strictly before test minus the embargo, shared time boundaries."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from core.errors import DataError
from models.split import WalkForwardSplit, time_holdout

M5 = 300_000


def pooled_ts(n_bars: int, pairs: int, offset_bars: int = 0) -> np.ndarray:
    """Bar times of several pairs pooled, the later pairs starting `offset_bars` later each."""
    parts = [(np.arange(n_bars) + k * offset_bars) * M5 for k in range(pairs)]
    ts = np.concatenate(parts)
    return np.sort(ts, kind="stable")


@settings(max_examples=60, deadline=None)
@given(
    n_bars=st.integers(200, 3000),
    pairs=st.integers(1, 3),
    offset=st.integers(0, 100),
    n_splits=st.integers(2, 6),
    embargo=st.integers(0, 60),
)
def test_no_training_row_within_the_embargo_of_its_test_block(n_bars, pairs, offset, n_splits, embargo):
    ts = pooled_ts(n_bars, pairs, offset)
    assume(embargo < len(np.unique(ts)) // (n_splits + 1))  # else a clear DataError (tested below)
    folds = list(WalkForwardSplit(n_splits, embargo * M5).split(ts))
    assert len(folds) == n_splits
    for f in folds:
        assert ts[f.train].max() < f.test_start_ms - embargo * M5
        assert (ts[f.test] >= f.test_start_ms).all() and (ts[f.test] < f.test_end_ms).all()
        # every row at a test time is in the test set, whichever pair it belongs to
        assert len(f.test) == np.count_nonzero((ts >= f.test_start_ms) & (ts < f.test_end_ms))
    for a, b in zip(folds, folds[1:], strict=False):
        assert a.test_end_ms == b.test_start_ms  # consecutive, non-overlapping test blocks
        assert len(b.train) > len(a.train)  # expanding window
    assert folds[-1].test_end_ms == ts.max() + 1


def test_too_few_bars_or_too_long_an_embargo_fail_clearly():
    with pytest.raises(DataError, match="cannot be cut into 5"):
        list(WalkForwardSplit(4, 0).split(np.arange(3) * M5))
    with pytest.raises(DataError, match="no training rows left"):
        list(WalkForwardSplit(2, 500 * M5).split(np.arange(300) * M5))


def test_time_holdout_validates_on_the_latest_slice_after_the_embargo():
    ts = pooled_ts(1000, 2)
    fit, val = time_holdout(ts, 0.2, 24 * M5)
    assert ts[val].min() == np.unique(ts)[-200]
    assert ts[fit].max() < ts[val].min() - 24 * M5
    assert len(np.intersect1d(fit, val)) == 0
    fit, val = time_holdout(ts, 0.0001, 24 * M5)
    assert len(val) == 0 and len(fit) == len(ts)
