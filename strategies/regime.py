"""Regime hysteresis: which regime's parameters are armed, given the model's raw predictions.

Rule (one pure function, used by the simulator and the live runner alike):
- A prediction counts only if its probability is at least `min_regime_probability` and it names a
  regime other than the active one; anything else (the active regime again, a weak prediction, no
  prediction = -1) resets the candidate.
- A candidate becomes active after `max(1, min_dwell_bars)` consecutive counting closes.
- Before any regime is active, the first counting prediction becomes active at once.
The switch happens at that close: entry orders are cancelled, held inventory keeps its exit orders
(see `strategies.switch`), and the new parameters' orders rest from the next bar.
"""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True, inline="always")
def hysteresis(active: int, cand: int, cand_n: int, raw: int, prob: float, min_dwell: int,
               min_prob: float) -> tuple[int, int, int]:
    """(active, candidate, candidate_bars) after one close with prediction `raw` at `prob`."""
    if raw < 0 or raw == active or prob < min_prob:
        return active, -1, 0
    if active < 0:
        return raw, -1, 0
    if raw == cand:
        cand_n += 1
    else:
        cand, cand_n = raw, 1
    if cand_n >= max(1, min_dwell):
        return raw, -1, 0
    return active, cand, cand_n


@nb.njit(cache=True)
def active_regimes(raw: np.ndarray, prob: np.ndarray, min_dwell: int, min_prob: float) -> np.ndarray:
    """The active regime at every close for a whole series (the tuner uses it to pick each regime's bars).
    `prob` may be empty (every prediction certain)."""
    out = np.empty(raw.shape[0], dtype=np.int64)
    active, cand, cand_n = -1, -1, 0
    for i in range(raw.shape[0]):
        p = prob[i] if prob.shape[0] > 0 else 1.0
        active, cand, cand_n = hysteresis(active, cand, cand_n, raw[i], p, min_dwell, min_prob)
        out[i] = active
    return out
