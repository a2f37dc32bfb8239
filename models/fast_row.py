"""One-row LightGBM prediction through the C API's single-row fast path.

`Booster.predict` on one row re-parses its parameters and sets up a predictor on every call: ~180 us,
for trees that take a few microseconds to walk. LightGBM's `LGBM_BoosterPredictForMatSingleRowFast`
exists for exactly this (live scoring): the configuration is prepared once
(`...SingleRowFastInit`) and each call only walks the trees; ~60 us here. Same booster, same
iterations (`best_iteration`, all when 0, as `Booster.predict` does by default), the same normal
(probability) output: equal to `Booster.predict` bit for bit (tested in tests/models).

The prepared configuration belongs to one booster and lives as long as it does (a weak-keyed table,
so nothing here is pickled with a model). LightGBM does not promise that concurrent calls on one
configuration are safe: calls on it take its lock.
"""

from __future__ import annotations

import ctypes
import threading
import weakref

import lightgbm
import numpy as np
from lightgbm.basic import _LIB, _c_str, _safe_call

_PREDICT_NORMAL = 0  # C_API_PREDICT_NORMAL
_DTYPE_FLOAT64 = 1  # C_API_DTYPE_FLOAT64


class _FastRow:
    def __init__(self, booster: lightgbm.Booster, n_features: int) -> None:
        self.n_features = n_features
        self.n_out = booster.num_model_per_iteration()
        self._handle = ctypes.c_void_p()
        _safe_call(_LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
            booster._handle, ctypes.c_int(_PREDICT_NORMAL), ctypes.c_int(0), ctypes.c_int(booster.best_iteration),
            ctypes.c_int(_DTYPE_FLOAT64), ctypes.c_int32(n_features), _c_str("num_threads=1"),
            ctypes.byref(self._handle)))
        self._lock = threading.Lock()
        # Kept here: at interpreter exit module globals may already be gone when __del__ runs.
        self._free = _LIB.LGBM_FastConfigFree

    def predict(self, row: np.ndarray) -> np.ndarray:
        data = np.ascontiguousarray(row, dtype=np.float64)
        if data.shape != (self.n_features,):
            raise ValueError(f"one row of {self.n_features} features expected, got shape {data.shape}")
        out = np.empty(self.n_out, dtype=np.float64)
        n = ctypes.c_int64(0)
        with self._lock:
            _safe_call(_LIB.LGBM_BoosterPredictForMatSingleRowFast(
                self._handle, data.ctypes.data_as(ctypes.c_void_p), ctypes.byref(n),
                out.ctypes.data_as(ctypes.POINTER(ctypes.c_double))))
        if n.value != self.n_out:
            raise RuntimeError(f"LightGBM returned {n.value} values for one row, expected {self.n_out}")
        return out

    def __del__(self) -> None:
        handle, free = getattr(self, "_handle", None), getattr(self, "_free", None)
        if handle is not None and handle.value and free is not None:
            free(handle)
            handle.value = None


_PREPARED: weakref.WeakKeyDictionary[lightgbm.Booster, _FastRow] = weakref.WeakKeyDictionary()
_PREPARE_LOCK = threading.Lock()


def predict_row(booster: lightgbm.Booster, row: np.ndarray) -> np.ndarray:
    """`booster.predict(row.reshape(1, -1))[0]` for a 1-D float64 row, through the prepared fast path."""
    fast = _PREPARED.get(booster)
    if fast is None:
        with _PREPARE_LOCK:
            fast = _PREPARED.get(booster)
            if fast is None:
                fast = _PREPARED[booster] = _FastRow(booster, booster.num_feature())
    return fast.predict(row)
