"""The feature set: the same template of scale-free indicators on every timeframe, plus time of day/week.

Each entry declares its warm-up: the number of bars *of its own timeframe* its value depends on
(the window [i-W+1, i]). The declared numbers are exact (tests/features/test_catalog.py checks
that W bars give the value and W-1 bars do not). Scale-free means ratios, log returns, z-scores,
ranks and bounded oscillators, so one model serves BTC at 40,000 and DOGE at 0.1.

Bump FEATURE_SET_VERSION whenever a definition below changes meaning: the version is part of the
feature spec hash that every logged model carries, and loading a model checks it.
"""

from __future__ import annotations

import numpy as np

from features import kernels as k

FEATURE_SET_VERSION = 1

# suffix -> warm-up in bars of the feature's timeframe
TEMPLATE: dict[str, int] = {
    "ret_1": 2,  # log return over 1 bar
    "ret_4": 5,
    "ret_16": 17,
    "rvol_24": 25,  # std of 1-bar log returns over 24 bars
    "park_24": 24,  # Parkinson range volatility
    "gk_24": 24,  # Garman-Klass volatility
    "atr_pct_14": 71,  # Wilder ATR(14) / close
    "ema_dist_12": 36,  # close / EMA(12) - 1
    "ema_dist_36": 108,
    "ema_slope_12": 42,  # log(EMA12[t] / EMA12[t-6])
    "adx_14": 98,  # ADX(14) / 100
    "di_diff_14": 71,  # (+DI - -DI) / 100
    "macd_hist": 104,  # (EMA12 - EMA26)/close minus its EMA(9)
    "rsi_14": 71,  # Wilder RSI(14) / 100
    "bb_pctb_20": 20,  # Bollinger %B (20, 2 sigma)
    "bb_width_20": 20,  # (upper - lower) / middle
    "er_20": 21,  # Kaufman efficiency ratio over 20 steps
    "autocorr_32": 33,  # lag-1 autocorrelation of 32 log returns
    "volz_48": 48,  # volume z-score over 48 bars, clipped to +-10
    "range_pos_48": 48,  # close inside the 48-bar high-low range, 0..1
    "vol_ratio_8_48": 49,  # rvol(8) / rvol(48)
    "rvol_rank_48": 60,  # percentile rank of rvol(12) among its last 48 values
}

# Only on the base timeframe: cyclic time of the base bar's open (UTC).
TIME_FEATURES: dict[str, int] = {"tod_sin": 1, "tod_cos": 1, "dow_sin": 1, "dow_cos": 1}

# Wilder smoothing is a finite filter of 5x period bars (RSI within ~2 points of the recursive
# one on real data, tests/features/test_indicator_oracles.py), EMAs 3x span, the ADX's own
# smoothing 2x period (see kernels for why finite).
_W14 = k.wilder_weights(14, 70)
_W14_ADX = k.wilder_weights(14, 28)
_E12 = k.ema_weights(12, 36)
_E26 = k.ema_weights(26, 78)
_E36 = k.ema_weights(36, 108)
_E9 = k.ema_weights(9, 27)
_LN2 = float(np.log(2.0))


def compute_template(o: np.ndarray, h: np.ndarray, low: np.ndarray, c: np.ndarray, v: np.ndarray) -> dict[str, np.ndarray]:
    """All TEMPLATE features for one timeframe's candles (NaN rows = missing candles)."""
    # Missing candles are NaN on purpose; impossible prices (0) become inf, which the builder reports.
    with np.errstate(divide="ignore", invalid="ignore"):
        return _template(o, h, low, c, v)


# The live runner computes this template for the newest candle only in `features/newest_bar.py`
# (same operations, same order, bit-identical): a change here must be mirrored there; its tests
# (tests/features/test_newest_bar.py) fail until it is.
def _template(o: np.ndarray, h: np.ndarray, low: np.ndarray, c: np.ndarray, v: np.ndarray) -> dict[str, np.ndarray]:
    r = k.lag_log_return(c, 1)
    out: dict[str, np.ndarray] = {
        "ret_1": r,
        "ret_4": k.lag_log_return(c, 4),
        "ret_16": k.lag_log_return(c, 16),
        "rvol_24": k.rolling_std(r, 24),
    }
    hl2 = np.log(h / low) ** 2
    out["park_24"] = np.sqrt(k.rolling_mean(hl2, 24) / (4.0 * _LN2))
    gk = 0.5 * hl2 - (2.0 * _LN2 - 1.0) * np.log(c / o) ** 2
    out["gk_24"] = np.sqrt(np.maximum(k.rolling_mean(gk, 24), 0.0))
    out.update(_trend_block(h, low, c))
    out.update(_oscillator_block(c, h, low, v))
    rv48 = k.rolling_std(r, 48)
    out["vol_ratio_8_48"] = k.safe_ratio(k.rolling_std(r, 8), rv48, 1.0)
    out["rvol_rank_48"] = k.rolling_rank(k.rolling_std(r, 12), 48)
    return out


def _trend_block(h: np.ndarray, low: np.ndarray, c: np.ndarray) -> dict[str, np.ndarray]:
    tr, pdm, mdm = k.true_range_and_dm(h, low, c)
    s_tr = k.fir(tr, _W14)
    pdi = k.safe_ratio(k.fir(pdm, _W14), s_tr, 0.0)
    mdi = k.safe_ratio(k.fir(mdm, _W14), s_tr, 0.0)
    dx = k.safe_ratio(np.abs(pdi - mdi), pdi + mdi, 0.0)
    ema12 = k.fir(c, _E12)
    macd_pct = (ema12 - k.fir(c, _E26)) / c
    return {
        "atr_pct_14": s_tr / c,
        "ema_dist_12": c / ema12 - 1.0,
        "ema_dist_36": c / k.fir(c, _E36) - 1.0,
        "ema_slope_12": k.lag_log_return(ema12, 6),
        "adx_14": k.fir(dx, _W14_ADX),
        "di_diff_14": pdi - mdi,
        "macd_hist": macd_pct - k.fir(macd_pct, _E9),
    }


def _oscillator_block(c: np.ndarray, h: np.ndarray, low: np.ndarray, v: np.ndarray) -> dict[str, np.ndarray]:
    gain, loss = k.gains_losses(c)
    ag = k.fir(gain, _W14)
    rsi = k.safe_ratio(ag, ag + k.fir(loss, _W14), 0.5)
    m20 = k.rolling_mean(c, 20)
    s20 = k.rolling_std(c, 20)
    vz = k.safe_ratio(v - k.rolling_mean(v, 48), k.rolling_std(v, 48), 0.0)
    lo48 = k.rolling_min(low, 48)
    hi48 = k.rolling_max(h, 48)
    return {
        "rsi_14": rsi,
        "bb_pctb_20": k.safe_ratio(c - m20 + 2.0 * s20, 4.0 * s20, 0.5),
        "bb_width_20": 4.0 * s20 / m20,
        "er_20": k.efficiency_ratio(c, 20),
        "autocorr_32": k.rolling_autocorr1(k.lag_log_return(c, 1), 32),
        "volz_48": np.clip(vz, -10.0, 10.0),
        "range_pos_48": k.safe_ratio(c - lo48, hi48 - lo48, 0.5),
    }


def compute_time(ts_ms: np.ndarray) -> dict[str, np.ndarray]:
    """Cyclic UTC time of day and day of week (Monday = 0) of each bar's open time."""
    day_ms = 86_400_000
    tod = (ts_ms % day_ms) / day_ms
    # 1970-01-01 was a Thursday: +3 makes Monday 0.
    dow = ((ts_ms // day_ms + 3) % 7) / 7.0
    two_pi = 2.0 * np.pi
    return {
        "tod_sin": np.sin(two_pi * tod),
        "tod_cos": np.cos(two_pi * tod),
        "dow_sin": np.sin(two_pi * dow),
        "dow_cos": np.cos(two_pi * dow),
    }
