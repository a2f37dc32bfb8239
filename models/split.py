"""Walk-forward splits with an embargo, by time, for data pooled across pairs.

The distinct bar times are cut into n_splits + 1 consecutive blocks of equal size; fold k tests on
block k+1 and trains on everything *before* it, minus an embargo: training rows must open at least
`embargo_ms` before the test block. A label at t looks H bars ahead, so with embargo >= H bars no
training label sees a test bar (purging). The same rule separates the early-stopping slice from the
rows the model is fitted on (`time_holdout`). All pairs share the same time boundaries, so a fold
never trains on ETH in March and tests on BTC in February.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from core.errors import DataError


@dataclass(frozen=True)
class Fold:
    number: int
    train: np.ndarray  # row positions
    test: np.ndarray
    test_start_ms: int
    test_end_ms: int  # exclusive


@dataclass(frozen=True)
class WalkForwardSplit:
    n_splits: int
    embargo_ms: int

    def get_n_splits(self) -> int:
        return self.n_splits

    def split(self, ts_ms: np.ndarray) -> Iterator[Fold]:
        ts_ms = np.asarray(ts_ms, dtype=np.int64)
        times = np.unique(ts_ms)
        blocks = np.array_split(times, self.n_splits + 1)
        if min(len(b) for b in blocks) == 0:
            raise DataError(
                f"{len(times)} distinct bars cannot be cut into {self.n_splits + 1} walk-forward blocks",
                "use more data or fewer folds (model.cv_folds)",
            )
        for k in range(self.n_splits):
            block = blocks[k + 1]
            start = int(block[0])
            end = int(blocks[k + 2][0]) if k + 2 < len(blocks) else int(block[-1]) + 1
            train = np.flatnonzero(ts_ms < start - self.embargo_ms)
            test = np.flatnonzero((ts_ms >= start) & (ts_ms < end))
            if not len(train):
                raise DataError(
                    f"fold {k + 1} has no training rows left after the {self.embargo_ms // 60_000}-minute embargo",
                    "use more data, fewer folds (model.cv_folds) or a shorter model.embargo_bars",
                )
            yield Fold(k + 1, train, test, start, end)


def time_holdout(ts_ms: np.ndarray, fraction: float, embargo_ms: int) -> tuple[np.ndarray, np.ndarray]:
    """(fit rows, validation rows): the last `fraction` of the time span validates, after an embargo.

    Returns an empty validation set when the rows are too few to spare one.
    """
    ts_ms = np.asarray(ts_ms, dtype=np.int64)
    times = np.unique(ts_ms)
    n_val = int(len(times) * fraction)
    if n_val < 1 or n_val >= len(times):
        return np.arange(len(ts_ms)), np.empty(0, dtype=np.int64)
    val_start = int(times[-n_val])
    fit = np.flatnonzero(ts_ms < val_start - embargo_ms)
    val = np.flatnonzero(ts_ms >= val_start)
    if not len(fit):
        return np.arange(len(ts_ms)), np.empty(0, dtype=np.int64)
    return fit, val
