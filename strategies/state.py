"""The engine's state as five plain numpy arrays (see `strategies.layout`), and its persistence."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from strategies.layout import (
    F_BAND_HI,
    F_BAND_LO,
    F_CASH,
    F_DAY_START_EQ,
    F_EQ_PEAK,
    F_LAST_EQ,
    F_LEG_MIN_SELL,
    F_LEG_STOP,
    F_MAX_BUY,
    F_MIN_SELL,
    F_PREV_CLOSE,
    I_ACTIVE,
    I_BAR,
    I_CAND,
    I_DAY_END_TS,
    I_DIRTY,
    I_ENTRIES_OK,
    I_NEXT_EVENT_BAR,
    MAX_LEGACY,
    MAX_LEVELS,
    MAX_ORDERS,
    N_GC,
    N_OC,
    N_SF,
    N_SI,
    N_XC,
)

_FIELDS = ("sf", "si", "grid", "legacy", "orders")


@dataclass
class EngineState:
    sf: np.ndarray
    si: np.ndarray
    grid: np.ndarray
    legacy: np.ndarray
    orders: np.ndarray

    @classmethod
    def new(cls, capital_quote: float) -> EngineState:
        """A flat account holding `capital_quote` in cash, no regime yet, nothing decided."""
        sf = np.zeros(N_SF, dtype=np.float64)
        si = np.zeros(N_SI, dtype=np.int64)
        sf[F_CASH] = capital_quote
        sf[F_EQ_PEAK] = sf[F_LAST_EQ] = sf[F_DAY_START_EQ] = capital_quote
        sf[F_BAND_LO], sf[F_BAND_HI] = -np.inf, np.inf
        sf[F_MAX_BUY], sf[F_MIN_SELL] = -np.inf, np.inf
        sf[F_LEG_STOP] = -np.inf
        sf[F_LEG_MIN_SELL] = np.inf
        sf[F_PREV_CLOSE] = np.nan  # no bar closed yet (strategies.atr)
        si[I_BAR] = -1
        si[I_ACTIVE] = si[I_CAND] = -1
        si[I_DIRTY] = 1
        si[I_ENTRIES_OK] = 1
        si[I_NEXT_EVENT_BAR] = 1 << 62
        si[I_DAY_END_TS] = -(1 << 62)
        return cls(sf, si, np.zeros((MAX_LEVELS, N_GC)), np.zeros((MAX_LEGACY, N_XC)), np.zeros((MAX_ORDERS, N_OC)))

    def copy(self) -> EngineState:
        return EngineState(*(getattr(self, f).copy() for f in _FIELDS))

    def snapshot(self) -> dict[str, np.ndarray]:
        """Plain arrays to persist (e.g. `np.savez`); `restore` gives the identical state back."""
        return {f: getattr(self, f).copy() for f in _FIELDS}

    @classmethod
    def restore(cls, arrays: dict[str, np.ndarray]) -> EngineState:
        shapes = {"sf": (N_SF,), "si": (N_SI,), "grid": (MAX_LEVELS, N_GC), "legacy": (MAX_LEGACY, N_XC),
                  "orders": (MAX_ORDERS, N_OC)}
        out = {}
        for f in _FIELDS:
            a = np.asarray(arrays[f])
            if a.shape != shapes[f]:
                raise ValueError(f"engine state {f!r} has shape {a.shape}, expected {shapes[f]} "
                                 "(saved by another engine version)")
            out[f] = np.ascontiguousarray(a, dtype=np.int64 if f == "si" else np.float64).copy()
        return cls(**out)

    def equals(self, other: EngineState) -> bool:
        return all(np.array_equal(getattr(self, f), getattr(other, f), equal_nan=True) for f in _FIELDS)
