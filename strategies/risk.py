"""Risk limits: the same code in the simulator and in the live runner.

- Capital allocation: each pair trades its own slice, `capital_quote * min(max_allocation_per_pair_pct,
  100 / n_pairs) / 100`, so the pairs together never exceed the capital.
- Maximum exposure: at most `max_exposure_pct` of the pair's slice may be held as inventory, counted
  at cost (what was paid for it). Entry orders are sized against
  `min(cash, max_exposure * capital - inventory_cost)`; orders that do not fit are counted as blocked.
  Counting at cost keeps the limit a function of fills only, so it never flaps with the price.
- Drawdown kill switch: a close with equity at or below `peak * (1 - max_drawdown_pct/100)` stops new
  entries and cancels resting ones for good (live: until an operator resets it); with
  `sell_inventory_on_kill` the inventory is also sold at market at the next open.
- Daily loss limit: a close with equity at or below the equity at the previous UTC day's last close
  times `1 - daily_loss_limit_pct/100` pauses entries until the next UTC day.
Exits of held inventory keep resting under every limit (unless sold on kill).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np

from strategies.layout import (
    F_CASH,
    F_DAY_START_EQ,
    F_EQ_PEAK,
    F_INV_COST,
    F_LAST_EQ,
    I_DAY_END_TS,
    I_DAY_PAUSED,
    I_ENTRIES_OK,
    I_KILLED,
    N_SETTINGS,
    S_CAPITAL,
    S_DAILY_LOSS,
    S_MARKET_BUFFER,
    S_MAX_DD,
    S_MAX_EXPOSURE,
    S_MIN_DWELL,
    S_MIN_PROB,
    S_SELL_ON_KILL,
    S_TOUCH,
)

DAY_MS = 86_400_000


@nb.njit(cache=True, inline="always")
def risk_on_close(sf: np.ndarray, si: np.ndarray, settings: np.ndarray, equity: float, ts_ms: int) -> bool:
    """Update the peak, the day mark and the flags at a close; True when a flag changed (the kill
    switch also matters while entries are already paused: it may sell the inventory)."""
    if ts_ms >= si[I_DAY_END_TS]:
        si[I_DAY_END_TS] = (ts_ms // DAY_MS + 1) * DAY_MS
        sf[F_DAY_START_EQ] = sf[F_LAST_EQ]
        si[I_DAY_PAUSED] = 0
    if equity > sf[F_EQ_PEAK]:
        sf[F_EQ_PEAK] = equity
    max_dd, daily = settings[S_MAX_DD], settings[S_DAILY_LOSS]
    killed_now = False
    if max_dd > 0.0 and si[I_KILLED] == 0 and equity <= sf[F_EQ_PEAK] * (1.0 - max_dd):
        si[I_KILLED] = 1
        killed_now = True
    if daily > 0.0 and si[I_DAY_PAUSED] == 0 and equity <= sf[F_DAY_START_EQ] * (1.0 - daily):
        si[I_DAY_PAUSED] = 1
    sf[F_LAST_EQ] = equity
    ok = 1 if (si[I_KILLED] == 0 and si[I_DAY_PAUSED] == 0) else 0
    changed = killed_now or ok != si[I_ENTRIES_OK]
    si[I_ENTRIES_OK] = ok
    return changed


@nb.njit(cache=True)
def entry_budget(sf: np.ndarray, settings: np.ndarray) -> float:
    """Quote the entry orders of one decision may commit: cash, capped by the exposure room."""
    room = settings[S_MAX_EXPOSURE] * settings[S_CAPITAL] - sf[F_INV_COST]
    return min(sf[F_CASH], room)


def pair_capital(capital_quote: float, max_allocation_per_pair_pct: float, n_pairs: int) -> float:
    """The slice of the capital one pair trades with."""
    share = min(max_allocation_per_pair_pct / 100.0, 1.0 / max(1, n_pairs))
    return capital_quote * share


@dataclass(frozen=True)
class RunSettings:
    """Per-pair settings of a run (simulator or live), as the engine's settings vector."""

    capital_quote: float  # this pair's slice
    max_exposure_pct: float = 80.0
    max_drawdown_pct: float = 25.0  # 0 disables
    daily_loss_limit_pct: float = 10.0  # 0 disables
    sell_inventory_on_kill: bool = False
    touch_fills: bool = False
    min_dwell_bars: int = 3
    min_regime_probability: float = 0.5
    # A market buy is decided at a close and fills at the next open: this much cash stays reserved
    # above its value at the close, so a gap up cannot overdraw the balance.
    market_buffer_pct: float = 2.0

    @classmethod
    def from_config(cls, cfg, n_pairs: int = 1) -> RunSettings:  # cfg: core.config.Config
        r, s = cfg.risk, cfg.strategy
        return cls(
            capital_quote=pair_capital(r.capital_quote, r.max_allocation_per_pair_pct, n_pairs),
            max_exposure_pct=r.max_exposure_pct,
            max_drawdown_pct=r.max_drawdown_pct,
            daily_loss_limit_pct=r.daily_loss_limit_pct,
            sell_inventory_on_kill=r.sell_inventory_on_kill,
            touch_fills=s.touch_fills,
            min_dwell_bars=s.min_dwell_bars,
            min_regime_probability=s.min_regime_probability,
        )

    def as_array(self) -> np.ndarray:
        out = np.zeros(N_SETTINGS, dtype=np.float64)
        out[S_CAPITAL] = self.capital_quote
        out[S_MAX_EXPOSURE] = self.max_exposure_pct / 100.0
        out[S_MAX_DD] = self.max_drawdown_pct / 100.0
        out[S_DAILY_LOSS] = self.daily_loss_limit_pct / 100.0
        out[S_SELL_ON_KILL] = 1.0 if self.sell_inventory_on_kill else 0.0
        out[S_TOUCH] = 1.0 if self.touch_fills else 0.0
        out[S_MIN_DWELL] = float(self.min_dwell_bars)
        out[S_MIN_PROB] = self.min_regime_probability
        out[S_MARKET_BUFFER] = self.market_buffer_pct / 100.0
        return out
