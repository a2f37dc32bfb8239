"""The TEMPLATE features of one timeframe's newest candle, in one numba kernel, without the full series.

`features.catalog` computes every indicator over the whole series with ~40 small kernel and numpy
calls; the live runner wants only the last value, and on a short tail the per-call overhead was
most of its cost. This module evaluates, for the newest candle only, the very same floating-point
operations in the same order as `catalog._template` and the `features.kernels` it calls (every sum
starts at 0.0 and runs oldest to newest term for term, the same two-pass std, the same NaN checks),
so the values are bit-identical (== on float64), not just close. Intermediate series (log returns,
true range, DI, EMAs) are evaluated only at the positions the newest value reads.

The one operation numba cannot repeat is numpy's own `np.log`, which catalog applies to h/low and
c/o (numpy's AVX-512 log differs from the libm log numba calls in ~2% of values): the caller passes
those logs in, computed by numpy (`log_hl`, `log_co`).

The jitted helpers stay in this one file on purpose: numba's cache notices edits to the cached
function's own file only, so a helper imported from another module could run stale after a change.

A feature whose window reaches before the first candle is NaN, as in the full build: each value is
computed only when n >= its TEMPLATE warm-up (W bars give the value, W-1 give NaN; tested in
tests/features/test_catalog.py and against `compute_template` in test_newest_bar.py). Any change to
a definition in `catalog._template` must be mirrored here; test_newest_bar.py fails until it is.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numba.extending import register_jitable

from features.catalog import TEMPLATE

# The kernel writes its values in this order; test_newest_bar.py checks it is TEMPLATE's order.
TEMPLATE_ORDER = (
    "ret_1", "ret_4", "ret_16", "rvol_24", "park_24", "gk_24", "atr_pct_14", "ema_dist_12", "ema_dist_36",
    "ema_slope_12", "adx_14", "di_diff_14", "macd_hist", "rsi_14", "bb_pctb_20", "bb_width_20", "er_20",
    "autocorr_32", "volz_48", "range_pos_48", "vol_ratio_8_48", "rvol_rank_48",
)  # fmt: skip
N_TEMPLATE = len(TEMPLATE_ORDER)
assert tuple(TEMPLATE) == TEMPLATE_ORDER, "catalog.TEMPLATE changed: update features/newest_bar.py to match"

# Compiled like features.kernels: cache=True, error_model="numpy" (0/0 gives NaN, not an exception),
# no fastmath (reassociation would break the bit-identity). The helpers are register_jitable rather
# than njit: an njit callee is compiled once per literal argument (`_std_at(r, i, 24)`, `(.., 48)`, ...),
# 19 compilations where one does; they are compiled into, and cached with, newest_templates. Loops
# rather than array expressions for the same reason (each expression is one more function to compile).
_helper = register_jitable(error_model="numpy")


@njit(cache=True, error_model="numpy")
def newest_templates(tails, counts, log_hl, log_co, weights, ln2, slots, row):
    """For each timeframe t, the template of the newest of its `counts[t]` candles (`tails[t, :, :n]`:
    open, high, low, close, volume, oldest first) into `row[slots[t, j]]` (slot -1: not in the spec).

    `weights` = (Wilder 14 / 70 taps, Wilder 14 / 28 taps, EMA 12, 26, 36, 9): catalog's FIR weights,
    passed in rather than read as globals (numba's cache would freeze globals of another module).
    """
    out = np.empty(N_TEMPLATE)
    for t in range(tails.shape[0]):
        n = counts[t]
        _template_at(tails[t, 0, :n], tails[t, 1, :n], tails[t, 2, :n], tails[t, 3, :n], tails[t, 4, :n],
                     log_hl[t, :n], log_co[t, :n], weights, ln2, out)  # fmt: skip
        for j in range(N_TEMPLATE):
            if slots[t, j] >= 0:
                row[slots[t, j]] = out[j]


@_helper
def _template_at(o, h, low, c, v, log_hl, log_co, weights, ln2, out):
    n = c.size
    i = n - 1
    out[:] = np.nan
    # 1-bar log returns at the positions the windows below read (the rank reaches back 59 bars)
    r = np.full(n, np.nan)
    for k in range(max(1, n - 59), n):
        r[k] = np.log(c[k] / c[k - 1])
    if n >= 2:
        out[0] = r[i]
    if n >= 5:
        out[1] = np.log(c[i] / c[i - 4])
    if n >= 17:
        out[2] = np.log(c[i] / c[i - 16])
    if n >= 25:
        out[3] = _std_at(r, i, 24)
    if n >= 24:
        _range_vol_at(log_hl, log_co, i, ln2, out)
    _trend_at(h, low, c, weights, out)
    _oscillators_at(c, h, low, v, r, weights, out)
    if n >= 49:
        out[20] = _safe_ratio(_std_at(r, i, 8), _std_at(r, i, 48), 1.0)
    if n >= 60:
        out[21] = _rank_of_std12(r, i)


@_helper
def _range_vol_at(log_hl, log_co, i, ln2, out):
    """park_24 and gk_24: catalog's numpy expressions, element by element in the same order."""
    s_hl = 0.0
    s_gk = 0.0
    for k in range(i - 23, i + 1):
        hl2 = log_hl[k] * log_hl[k]  # numpy's `x ** 2` is x * x
        s_hl += hl2
        s_gk += 0.5 * hl2 - (2.0 * ln2 - 1.0) * (log_co[k] * log_co[k])
    out[4] = np.sqrt(s_hl / 24 / (4.0 * ln2))
    m = s_gk / 24
    out[5] = np.sqrt(m if (m >= 0.0 or m != m) else 0.0)  # np.maximum(m, 0.0) keeps NaN


@_helper
def _trend_at(h, low, c, weights, out):
    """Windows follow from the FIR lengths (EMA 12/26/36: 36/78/108 taps, Wilder 70, ADX 28, signal 27),
    so no index can fall outside the candles whatever lengths catalog picks."""
    n = c.size
    i = n - 1
    w14, w14_adx, e12, e26, e36, e9 = weights
    if n >= e12.size:
        ema_i = _fir_at(c, e12, i)
        out[7] = c[i] / ema_i - 1.0
        if n >= e12.size + 6:
            out[9] = np.log(ema_i / _fir_at(c, e12, i - 6))
    if n >= e36.size:
        out[8] = c[i] / _fir_at(c, e36, i) - 1.0
    taps = max(e12.size, e26.size)
    if n >= taps + e9.size - 1:
        # MACD % at the bars its signal EMA reads
        first = i - (e9.size - 1)
        macd = _fir_span(c, e12, first, e9.size)
        ema26 = _fir_span(c, e26, first, e9.size)
        for q in range(e9.size):
            macd[q] = (macd[q] - ema26[q]) / c[first + q]
        out[12] = macd[-1] - _fir_at(macd, e9, e9.size - 1)
    if n >= w14.size + 1:  # +1: true range and DM need the previous bar
        _directional_at(h, low, c, w14, w14_adx, out)


@_helper
def _directional_at(h, low, c, w14, w14_adx, out):
    """atr_pct_14, di_diff_14 and (with enough bars) adx_14: Wilder sums of TR, +DM, -DM side by side."""
    n = c.size
    i = n - 1
    with_adx = n >= w14.size + w14_adx.size
    n_dx = w14_adx.size if with_adx else 1
    tr = np.full(n, np.nan)
    pdm = np.full(n, np.nan)
    mdm = np.full(n, np.nan)
    for k in range(max(1, n - (n_dx + w14.size - 1)), n):
        pc = c[k - 1]
        up = h[k] - h[k - 1]
        down = low[k - 1] - low[k]
        if pc != pc or up != up or down != down:
            continue
        tr[k] = max(h[k], pc) - min(low[k], pc)
        # `&`, not `and`: a select instead of branches on unpredictable price moves (same values)
        pdm[k] = up if ((up > down) & (up > 0.0)) else 0.0
        mdm[k] = down if ((down > up) & (down > 0.0)) else 0.0
    first = i - (n_dx - 1)
    s_tr = _fir_span(tr, w14, first, n_dx)
    s_p = _fir_span(pdm, w14, first, n_dx)
    s_m = _fir_span(mdm, w14, first, n_dx)
    dx = np.empty(n_dx)
    for q in range(n_dx):
        pdi = _safe_ratio(s_p[q], s_tr[q], 0.0)
        mdi = _safe_ratio(s_m[q], s_tr[q], 0.0)
        dx[q] = _safe_ratio(abs(pdi - mdi), pdi + mdi, 0.0)
    out[6] = s_tr[-1] / c[i]
    out[11] = _safe_ratio(s_p[-1], s_tr[-1], 0.0) - _safe_ratio(s_m[-1], s_tr[-1], 0.0)
    if with_adx:
        out[10] = _fir_at(dx, w14_adx, n_dx - 1)


@_helper
def _oscillators_at(c, h, low, v, r, weights, out):
    n = c.size
    i = n - 1
    w14 = weights[0]
    if n >= w14.size + 1:
        s_g = 0.0
        s_l = 0.0
        for k in range(w14.size):
            d = c[i - k] - c[i - k - 1]
            g = np.nan if d != d else (d if d > 0.0 else 0.0)
            lo = np.nan if d != d else (-d if d < 0.0 else 0.0)
            s_g += w14[k] * g
            s_l += w14[k] * lo
        out[13] = _safe_ratio(s_g, s_g + s_l, 0.5)
    if n >= 20:
        m20 = _mean_at(c, i, 20)
        s20 = _std_at(c, i, 20)
        out[14] = _safe_ratio(c[i] - m20 + 2.0 * s20, 4.0 * s20, 0.5)
        out[15] = 4.0 * s20 / m20
    if n >= 21:
        out[16] = _efficiency_at(c, i, 20)
    if n >= 33:
        out[17] = _autocorr1_at(r, i, 32)
    if n >= 48:
        vz = _safe_ratio(v[i] - _mean_at(v, i, 48), _std_at(v, i, 48), 0.0)
        out[18] = vz if (vz != vz or -10.0 <= vz <= 10.0) else (-10.0 if vz < -10.0 else 10.0)  # np.clip
        lo48 = _min_at(low, i, 48)
        hi48 = _max_at(h, i, 48)
        out[19] = _safe_ratio(c[i] - lo48, hi48 - lo48, 0.5)


@_helper
def _fir_at(x, weights, i):
    s = 0.0
    for k in range(weights.size):
        s += weights[k] * x[i - k]
    return s


@_helper
def _fir_span(x, weights, first, count):
    """kernels.fir at positions first .. first + count - 1. Taps outer, positions inner: each sum still
    adds its terms in kernels.fir's order (same bits), but the independent sums advance side by side
    instead of each being one long chain of dependent additions (the kernel went from 54 to 32 us)."""
    acc = np.zeros(count)
    for k in range(weights.size):
        w = weights[k]
        xs = x[first - k : first - k + count]  # a view: indices from range(), so no wrap-around checks
        for q in range(count):
            acc[q] += w * xs[q]
    return acc


@_helper
def _std_span(x, w, first, count):
    """kernels.rolling_std (two passes) at positions first .. first + count - 1, side by side as above."""
    s = np.zeros(count)
    for k in range(w):
        xs = x[first - w + 1 + k : first - w + 1 + k + count]
        for q in range(count):
            s[q] += xs[q]
    for q in range(count):
        s[q] = s[q] / w  # now the means
    sq = np.zeros(count)
    for k in range(w):
        xs = x[first - w + 1 + k : first - w + 1 + k + count]
        for q in range(count):
            d = xs[q] - s[q]
            sq[q] += d * d
    for q in range(count):
        sq[q] = np.sqrt(sq[q] / w)
    return sq


@_helper
def _mean_at(x, i, w):
    s = 0.0
    for k in range(i - w + 1, i + 1):
        s += x[k]
    return s / w


@_helper
def _std_at(x, i, w):
    s = 0.0
    for k in range(i - w + 1, i + 1):
        s += x[k]
    m = s / w
    q = 0.0
    for k in range(i - w + 1, i + 1):
        d = x[k] - m
        q += d * d
    return np.sqrt(q / w)


@_helper
def _max_at(x, i, w):
    """kernels.rolling_max at i: NaN if the window holds a NaN (selects, not branches, per value)."""
    m = -np.inf
    bad = False
    for k in range(i - w + 1, i + 1):
        u = x[k]
        bad |= u != u
        m = u if u > m else m
    return np.nan if bad else m


@_helper
def _min_at(x, i, w):
    m = np.inf
    bad = False
    for k in range(i - w + 1, i + 1):
        u = x[k]
        bad |= u != u
        m = u if u < m else m
    return np.nan if bad else m


@_helper
def _rank_of_std12(r, i):
    """kernels.rolling_rank(rolling_std(r, 12), 48) at i."""
    s12 = _std_span(r, 12, i - 47, 48)
    val = s12[47]
    if val != val:
        return np.nan
    cnt = 0
    for q in range(48):
        u = s12[q]
        if u != u:
            return np.nan
        if u <= val:
            cnt += 1
    return cnt / 48


@_helper
def _autocorr1_at(r, i, w):
    m = w - 1
    sa = 0.0
    sb = 0.0
    for k in range(i - m + 1, i + 1):
        sa += r[k - 1]
        sb += r[k]
    ma = sa / m
    mb = sb / m
    cov = 0.0
    va = 0.0
    vb = 0.0
    for k in range(i - m + 1, i + 1):
        da = r[k - 1] - ma
        db = r[k] - mb
        cov += da * db
        va += da * da
        vb += db * db
    if cov != cov or va != va or vb != vb:
        return np.nan
    if va <= 0.0 or vb <= 0.0:
        return 0.0
    return cov / np.sqrt(va * vb)


@_helper
def _efficiency_at(c, i, w):
    path = 0.0
    for k in range(i - w + 1, i + 1):
        path += abs(c[k] - c[k - 1])
    net = abs(c[i] - c[i - w])
    if path != path or net != net:
        return np.nan
    if path <= 0.0:
        return 0.0
    return net / path


@_helper
def _safe_ratio(a, b, neutral):
    if a != a or b != b:
        return np.nan
    if b == 0.0:
        return neutral
    return a / b
