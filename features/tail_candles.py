"""The candles each timeframe's newest features read, gathered from the live window in one numba pass.

`gather_tails` checks the base open times (sorted, unique, on the grid), finds the gap-free run the
newest bar belongs to (the full build restarts after a gap; so does this), and lays out per
timeframe the last candles the newest row needs, oldest first: the base candles themselves, and
for each higher timeframe the complete candles up to the newest one closed by the bar's close,
aggregated exactly like `core.resample.resample` (same values, same bits):
- open = first open, close = last close; high / low = max / min, NaN-propagating like
  np.maximum / np.minimum.reduceat;
- volume = numpy's `add.reduceat` sum, whose order is numpy's pairwise summation (the first
  element, plus the pairwise sum of the rest: 8 interleaved partial sums per block of <= 128,
  halves above), then rounded to 8 decimals like `np.round` (x * 1e8, rint, / 1e8) where a float
  has room for them. test_tail_candles.py checks both against numpy on every length up to 10,080.
It also writes h/low and c/o per candle (`ratios[0]`, `ratios[1]`), whose logs the caller takes with numpy (see newest_bar).
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numba.extending import register_jitable

# Compiled like features.kernels (cache=True, error_model="numpy", no fastmath); the helpers are
# register_jitable, compiled into and cached with gather_tails (see newest_bar for why).
_helper = register_jitable(error_model="numpy")

# core.resample: above 2**53 / 1e8 a float has no room for 8 decimals; the sum is kept as it is.
_ROUNDABLE_VOLUME = 2**53 / 1e8

OK, UNSORTED, OFF_GRID = 0, 1, 2


@njit(cache=True, error_model="numpy")
def gather_tails(ts, x, base_ms, base_tail, tf_ms, ratio, origin, tail_bars, tails, counts, ratios):
    """Fill `tails[t, :, :counts[t]]` (t = 0 the base timeframe, t >= 1 higher timeframe t-1) from open
    times `ts` and the (n, 5) open/high/low/close/volume block `x`, and `ratios[0 / 1, t, :]` with
    h/low and c/o (1.0 past the count). Returns OK, UNSORTED or OFF_GRID (then nothing is filled)."""
    n = ts.size
    start = _run_start(ts, base_ms)
    if start < 0:
        return -start
    cap = tails.shape[2]
    ratios[:] = 1.0
    m = min(n - start, base_tail, cap)
    for q in range(m):
        for j in range(5):
            tails[0, j, q] = x[n - m + q, j]
    counts[0] = m
    t_last = ts[n - 1]
    for t in range(tf_ms.size):
        tf, r = tf_ms[t], ratio[t]
        # The newest candle closed by the bar's close opens at T = floor((t + base) / tf) * tf - tf.
        want = (t_last + base_ms - origin[t]) // tf * tf + origin[t] - tf
        newest_first = n - 1 - (t_last - want) // base_ms  # its first base bar (the run has no gaps)
        oldest_allowed = max(start, n - tail_bars[t])
        m = 0
        while m < cap and newest_first - m * r >= oldest_allowed:
            m += 1
        for q in range(m):
            _aggregate(x, newest_first - (m - 1 - q) * r, r, tails, t + 1, q)
        counts[t + 1] = m
    for t in range(tails.shape[0]):
        for q in range(counts[t]):
            ratios[0, t, q] = tails[t, 1, q] / tails[t, 2, q]
            ratios[1, t, q] = tails[t, 3, q] / tails[t, 0, q]
    return OK


@_helper
def _run_start(ts, base_ms):
    """First index of the gap-free run ending at the newest bar, or -UNSORTED / -OFF_GRID.

    Same verdicts as checking sortedness and then ts % base_ms on every bar, with one integer
    division per gap instead of per bar (64-bit division made the plain check ~40 us on 5,000 bars):
    all bars are on the grid iff the newest is and every step between bars is a multiple of it.
    """
    n = ts.size
    steps_off = 0
    for k in range(1, n):  # branch-free, so it vectorises: the usual window has no gap at all
        steps_off += ts[k] - ts[k - 1] != base_ms
    if steps_off == 0:
        return -OFF_GRID if ts[n - 1] % base_ms else 0
    start = 0
    unsorted = False
    off_grid = ts[n - 1] % base_ms != 0
    for k in range(1, n):
        d = ts[k] - ts[k - 1]
        if d != base_ms:
            start = k
            if d <= 0:
                unsorted = True
            elif d % base_ms:
                off_grid = True
    if unsorted:
        return -UNSORTED
    return -OFF_GRID if off_grid else start


@_helper
def _aggregate(x, a, r, tails, t, q):
    """tails[t, :, q] = the higher candle of base rows [a, a + r) of x, as core.resample builds it."""
    bars = x[a : a + r]  # a view: indices from range(), so no wrap-around checks in the loops
    hi = bars[0, 1]
    lo = bars[0, 2]
    nan_seen = hi != hi or lo != lo
    for b in range(1, r):
        u = bars[b, 1]
        w = bars[b, 2]
        nan_seen |= u != u or w != w
        # selects, not branches: a branch per bar on unpredictable prices cost ~3x the whole pass
        hi = u if u > hi else hi
        lo = w if w < lo else lo
    if nan_seen:  # np.maximum / np.minimum: a NaN anywhere in the bucket wins
        if _any_nan(bars[:, 1]):
            hi = np.nan
        if _any_nan(bars[:, 2]):
            lo = np.nan
    volume = bars[0, 4] + pairwise_sum(bars[1:, 4])
    if abs(volume) < _ROUNDABLE_VOLUME:
        volume = np.rint(volume * 1e8) / 1e8
    tails[t, 0, q] = bars[0, 0]
    tails[t, 1, q] = hi
    tails[t, 2, q] = lo
    tails[t, 3, q] = bars[r - 1, 3]
    tails[t, 4, q] = volume


@_helper
def _any_nan(v):
    for k in range(v.size):
        if v[k] != v[k]:
            return True
    return False


@njit(cache=True, error_model="numpy")
def pairwise_sum(v):
    """sum(v) in the order of numpy's pairwise summation (numpy/_core/src/umath/loops_utils.h.src)."""
    n = v.size
    if n < 8:
        res = -0.0
        for k in range(n):
            res += v[k]
        return res
    if n <= 128:
        r0, r1, r2, r3 = v[0], v[1], v[2], v[3]
        r4, r5, r6, r7 = v[4], v[5], v[6], v[7]
        for k in range(8, n - n % 8, 8):
            r0 += v[k]
            r1 += v[k + 1]
            r2 += v[k + 2]
            r3 += v[k + 3]
            r4 += v[k + 4]
            r5 += v[k + 5]
            r6 += v[k + 6]
            r7 += v[k + 7]
        res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
        for k in range(n - n % 8, n):
            res += v[k]
        return res
    half = n // 2
    half -= half % 8
    return pairwise_sum(v[:half]) + pairwise_sum(v[half:])
