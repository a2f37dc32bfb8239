"""Windowed numba kernels: every output at bar i is a function of the inputs in [i-W+1, i] only.

Why windowed (finite memory) instead of the usual recursive EMA/Wilder smoothing: a recursive
filter depends on all history, so the value at bar t changes when earlier bars are prepended and the
live runner's newest row from a trailing window would differ from the training matrix. Here each
output is summed over its own window in a fixed order, so it is *bit-identical* whatever precedes
the window. Exponential smoothing becomes a finite (FIR) filter with exponential weights, truncated
and renormalised (see `ema_weights`). Cost is O(n * W) instead of O(n); the windows are short.

NaN in means "missing candle" (the builder reindexes gaps to NaN rows): every kernel returns NaN
for a window that contains a NaN, so a gap poisons exactly the windows that span it. Undefined
ratios on *complete* data (flat prices, zero volume) get a documented neutral value instead of
NaN, so a quiet market never blocks the newest row.

No `fastmath` and no `parallel`: SIMD reassociation could depend on array alignment (breaking the
bit-identity above), and numba's default threading layer aborts on concurrent launches from
several threads (the live runner loads models in a background thread).
"""

from __future__ import annotations

import numpy as np
from numba import njit


def ema_weights(span: float, length: int) -> np.ndarray:
    """Exponential weights alpha*(1-alpha)^k, k = 0..length-1 (k=0 is the newest bar), summing to 1."""
    alpha = 2.0 / (span + 1.0)
    w = alpha * (1.0 - alpha) ** np.arange(length, dtype=np.float64)
    return w / w.sum()


def wilder_weights(period: int, length: int) -> np.ndarray:
    """Wilder's smoothing (alpha = 1/period) as a truncated, renormalised FIR filter."""
    alpha = 1.0 / period
    w = alpha * (1.0 - alpha) ** np.arange(length, dtype=np.float64)
    return w / w.sum()


@njit(cache=True, error_model="numpy")
def fir(x, weights):
    """out[i] = sum_k weights[k] * x[i-k]; weights[0] applies to the newest bar."""
    n, w = x.size, weights.size
    out = np.full(n, np.nan)
    for i in range(w - 1, n):
        s = 0.0
        for k in range(w):
            s += weights[k] * x[i - k]
        out[i] = s
    return out


@njit(cache=True, error_model="numpy")
def rolling_mean(x, w):
    n = x.size
    out = np.full(n, np.nan)
    for i in range(w - 1, n):
        s = 0.0
        for k in range(i - w + 1, i + 1):
            s += x[k]
        out[i] = s / w
    return out


@njit(cache=True, error_model="numpy")
def rolling_std(x, w):
    """Population standard deviation over the window, two passes (mean, then squared deviations)."""
    n = x.size
    out = np.full(n, np.nan)
    for i in range(w - 1, n):
        s = 0.0
        for k in range(i - w + 1, i + 1):
            s += x[k]
        m = s / w
        q = 0.0
        for k in range(i - w + 1, i + 1):
            d = x[k] - m
            q += d * d
        out[i] = np.sqrt(q / w)
    return out


@njit(cache=True, error_model="numpy")
def rolling_rms(x, w):
    """sqrt(mean(x^2)) over the window: volatility of zero-mean returns."""
    n = x.size
    out = np.full(n, np.nan)
    for i in range(w - 1, n):
        q = 0.0
        for k in range(i - w + 1, i + 1):
            q += x[k] * x[k]
        out[i] = np.sqrt(q / w)
    return out


@njit(cache=True, error_model="numpy")
def rolling_min(x, w):
    n = x.size
    out = np.full(n, np.nan)
    for i in range(w - 1, n):
        m = np.inf
        bad = False
        for k in range(i - w + 1, i + 1):
            v = x[k]
            if v != v:
                bad = True
                break
            if v < m:
                m = v
        out[i] = np.nan if bad else m
    return out


@njit(cache=True, error_model="numpy")
def rolling_max(x, w):
    n = x.size
    out = np.full(n, np.nan)
    for i in range(w - 1, n):
        m = -np.inf
        bad = False
        for k in range(i - w + 1, i + 1):
            v = x[k]
            if v != v:
                bad = True
                break
            if v > m:
                m = v
        out[i] = np.nan if bad else m
    return out


@njit(cache=True, error_model="numpy")
def rolling_rank(x, w):
    """Fraction of the window's values <= the newest value, in (0, 1]: a percentile rank."""
    n = x.size
    out = np.full(n, np.nan)
    for i in range(w - 1, n):
        v = x[i]
        cnt = 0
        bad = v != v
        for k in range(i - w + 1, i + 1):
            u = x[k]
            if u != u:
                bad = True
                break
            if u <= v:
                cnt += 1
        out[i] = np.nan if bad else cnt / w
    return out


@njit(cache=True, error_model="numpy")
def rolling_autocorr1(r, w):
    """Lag-1 Pearson autocorrelation of r over its last w values (w-1 pairs); 0 when flat."""
    n = r.size
    out = np.full(n, np.nan)
    m = w - 1
    for i in range(w - 1, n):
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
            out[i] = np.nan
        elif va <= 0.0 or vb <= 0.0:
            out[i] = 0.0
        else:
            out[i] = cov / np.sqrt(va * vb)
    return out


@njit(cache=True, error_model="numpy")
def efficiency_ratio(c, n):
    """Kaufman: |c[i] - c[i-n]| / sum |c[k] - c[k-1]| over the last n steps; 0 when the path is flat."""
    size = c.size
    out = np.full(size, np.nan)
    for i in range(n, size):
        path = 0.0
        for k in range(i - n + 1, i + 1):
            path += abs(c[k] - c[k - 1])
        net = abs(c[i] - c[i - n])
        if path != path or net != net:
            out[i] = np.nan
        elif path <= 0.0:
            out[i] = 0.0
        else:
            out[i] = net / path
    return out


@njit(cache=True, error_model="numpy")
def lag_log_return(c, lag):
    n = c.size
    out = np.full(n, np.nan)
    for i in range(lag, n):
        out[i] = np.log(c[i] / c[i - lag])
    return out


@njit(cache=True, error_model="numpy")
def true_range_and_dm(h, low, c):
    """True range, +DM and -DM (Wilder); each needs the previous bar, so index 0 is NaN."""
    n = c.size
    tr = np.full(n, np.nan)
    pdm = np.full(n, np.nan)
    mdm = np.full(n, np.nan)
    for i in range(1, n):
        pc = c[i - 1]
        up = h[i] - h[i - 1]
        down = low[i - 1] - low[i]
        # builtin max/min skip NaN silently, so a missing bar must be caught explicitly
        if pc != pc or up != up or down != down:
            continue
        tr[i] = max(h[i], pc) - min(low[i], pc)
        pdm[i] = up if (up > down and up > 0.0) else 0.0
        mdm[i] = down if (down > up and down > 0.0) else 0.0
    return tr, pdm, mdm


@njit(cache=True, error_model="numpy")
def gains_losses(c):
    n = c.size
    g = np.full(n, np.nan)
    lo = np.full(n, np.nan)
    for i in range(1, n):
        d = c[i] - c[i - 1]
        if d != d:
            continue
        g[i] = d if d > 0.0 else 0.0
        lo[i] = -d if d < 0.0 else 0.0
    return g, lo


@njit(cache=True, error_model="numpy")
def safe_ratio(num, den, neutral):
    """num/den elementwise; `neutral` where den == 0 (flat data); NaN stays NaN."""
    n = num.size
    out = np.empty(n)
    for i in range(n):
        a = num[i]
        b = den[i]
        if a != a or b != b:
            out[i] = np.nan
        elif b == 0.0:
            out[i] = neutral
        else:
            out[i] = a / b
    return out


@njit(cache=True, error_model="numpy")
def expand_rows(block, col0, values, idx):
    """block[i, col0 + j] = values[idx[i], j]: attach higher-timeframe rows to base bars (idx >= 0)."""
    n = idx.size
    for j in range(values.shape[1]):
        c = col0 + j
        for i in range(n):
            block[i, c] = values[idx[i], j]
