"""The regime classifier: a scikit-learn estimator around lightgbm.LGBMClassifier.

Contract (scikit-learn): `__init__` stores parameters only; `fit` returns self; learned attributes
end in `_` (`classes_`, `feature_names_in_`, `n_features_in_`, `best_iteration_`, `model_`);
randomness only through `random_state`.

Training, when `early_stopping_rounds` is set and the data allow it: the last
`validation_fraction` of the time span (by `ts_ms`, so pooled pairs share the cut) is held out,
separated from the fitted rows by `embargo_ms` (labels look ahead; the gap keeps training labels
out of the validation bars). LightGBM stops when the class-weighted validation error (with
balanced weights: 1 - balanced accuracy) has not improved for `early_stopping_rounds` rounds.
Weighted log loss was tried first and stopped after ~5-10 rounds on real data while accuracy kept
improving for 100+ (regime probabilities drift out of calibration faster than their ranking does).
With `refit_full` the model is then refitted on all rows with the number of rounds found, so the
most recent data is not left out of the final model.

Speed (bundled sample, ~37k rows x 92 features, 2-core box): one LightGBM thread per fit. With
`n_jobs=2` a fit under load from other processes took 10x longer than with 1 thread (OpenMP threads
spin waiting for a busy core); run several fits side by side instead (`models.evaluate.cross_validate`
with an executor). `max_bin=63` (LightGBM's default is 255) cuts ~15% of the time per round with fold
scores inside their noise.

Classes are weighted inversely to their frequency ("balanced") unless `class_weight` is None, so
`predict` favours macro-F1 over accuracy, and `predict_proba` gives probabilities *under equal
class priors*: a minority regime gets a higher probability than its true frequency would give
(multiply by the class shares and renormalise for frequency-calibrated probabilities).
"""

from __future__ import annotations

from typing import Any

import lightgbm
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from core.errors import ModelError
from models.fast_row import predict_row
from models.split import time_holdout


class RegimeClassifier(ClassifierMixin, BaseEstimator):
    def __init__(
        self,
        n_estimators: int = 400,
        learning_rate: float = 0.05,
        num_leaves: int = 31,
        min_child_samples: int = 500,
        subsample: float = 0.8,
        colsample_bytree: float = 0.5,
        reg_lambda: float = 1.0,
        class_weight: str | None = "balanced",
        early_stopping_rounds: int | None = 100,
        validation_fraction: float = 0.15,
        embargo_ms: int = 0,
        refit_full: bool = True,
        random_state: int = 42,
        n_jobs: int = 1,
        max_bin: int = 63,
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.class_weight = class_weight
        self.early_stopping_rounds = early_stopping_rounds
        self.validation_fraction = validation_fraction
        self.embargo_ms = embargo_ms
        self.refit_full = refit_full
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.max_bin = max_bin

    def fit(self, X: pd.DataFrame | np.ndarray, y: Any, ts_ms: np.ndarray | None = None) -> RegimeClassifier:
        """Fit on rows X with labels y; `ts_ms` (bar open times) orders rows in time, else row order is time."""
        X = _as_frame(X)
        y = np.asarray(y)
        if len(X) != len(y):
            raise ValueError(f"X has {len(X)} rows but y has {len(y)}")
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        self.classes_ = np.unique(y)
        # LightGBM sees integer codes: its eval_X/eval_y path (4.7) does not encode string labels.
        y = np.searchsorted(self.classes_, y)
        weights = self._class_weights(y)
        ts = np.arange(len(y), dtype=np.int64) if ts_ms is None else np.asarray(ts_ms, dtype=np.int64)
        fit_rows, val_rows = (np.arange(len(y)), np.empty(0, dtype=np.int64))
        if self.early_stopping_rounds:
            embargo = self.embargo_ms if ts_ms is not None else 0
            fit_rows, val_rows = time_holdout(ts, self.validation_fraction, embargo)
        self.best_iteration_ = self.n_estimators
        if len(val_rows) and len(np.unique(y[fit_rows])) == len(self.classes_):
            model = self._lgbm(self.n_estimators, weights)
            model.fit(
                X.iloc[fit_rows],
                y[fit_rows],
                eval_X=(X.iloc[val_rows],),
                eval_y=(y[val_rows],),
                eval_sample_weight=[_sample_weights(y[val_rows], weights)],
                callbacks=[lightgbm.early_stopping(self.early_stopping_rounds, verbose=False)],
            )
            self.best_iteration_ = int(model.best_iteration_ or self.n_estimators)
            self.validation_rows_ = len(val_rows)
            if not self.refit_full:
                self.model_ = model
                return self
        self.model_ = self._lgbm(self.best_iteration_, weights).fit(X, y)
        return self

    def predict_proba(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Probabilities, columns in the order of `classes_`."""
        check_is_fitted(self, "model_")
        X = self._checked(X)
        proba = self.model_.predict_proba(X)
        out = np.zeros((len(X), len(self.classes_)))
        out[:, np.asarray(self.model_.classes_, dtype=int)] = proba
        return out

    def predict(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def require_features(self, names: list[str]) -> None:
        """ModelError unless the model was fitted on exactly these columns in this order (NotFittedError
        when it was not fitted). Run once before `predict_proba_row`, which checks nothing."""
        check_is_fitted(self, "model_")
        self._checked(pd.DataFrame(np.zeros((1, len(names))), columns=names))

    def predict_proba_row(self, row: np.ndarray) -> np.ndarray:
        """`predict_proba` of one float64 row (1-D, columns in `feature_names_in_` order), straight from the
        booster: the same trees and C call as the scikit-learn path, whose pandas and validation
        overhead (~1.7 ms) dwarfs the prediction itself. The caller checks the columns once with
        `require_features`; the probabilities are equal to `predict_proba`'s bit for bit (tested)."""
        # Like LGBMModel.predict: the booster's best iteration, if any, through LightGBM's single-row
        # fast path (models.fast_row). Always the multiclass objective (LightGBM refuses it for fewer
        # than 3 classes): one column per class.
        raw = predict_row(self.model_.booster_, row)
        out = np.zeros(len(self.classes_))
        out[np.asarray(self.model_.classes_, dtype=int)] = raw
        return out

    @property
    def gain_importance_(self) -> pd.Series:
        """Total gain of each feature's splits, largest first."""
        check_is_fitted(self, "model_")
        gain = self.model_.booster_.feature_importance(importance_type="gain")
        return pd.Series(gain, index=self.feature_names_in_).sort_values(ascending=False)

    def _lgbm(self, n_estimators: int, weights: dict[Any, float] | None) -> lightgbm.LGBMClassifier:
        return lightgbm.LGBMClassifier(
            objective="multiclass",
            metric="multi_error",
            n_estimators=n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples,
            subsample=self.subsample,
            subsample_freq=1 if self.subsample < 1 else 0,
            colsample_bytree=self.colsample_bytree,
            reg_lambda=self.reg_lambda,
            class_weight=weights,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
            max_bin=self.max_bin,
            # Column-wise histograms: the faster layout for ~40k rows x ~90 features; fixing it also skips
            # LightGBM's timing test of both layouts at every fit.
            force_col_wise=True,
            verbose=-1,
        )

    def _class_weights(self, y: np.ndarray) -> dict[Any, float] | None:
        if self.class_weight is None:
            return None
        if self.class_weight != "balanced":
            raise ValueError(f"class_weight must be 'balanced' or None, not {self.class_weight!r}")
        classes, counts = np.unique(y, return_counts=True)
        return {c: len(y) / (len(classes) * n) for c, n in zip(classes, counts, strict=True)}

    def _checked(self, X: pd.DataFrame | np.ndarray) -> pd.DataFrame:
        X = _as_frame(X, self.feature_names_in_)
        if list(X.columns) != list(self.feature_names_in_):
            theirs, mine = set(X.columns), set(self.feature_names_in_)
            detail = f"missing {sorted(mine - theirs)[:5]}, unexpected {sorted(theirs - mine)[:5]}" if theirs != mine else "same names, other order"
            raise ModelError(
                f"features passed to the regime model differ from those it was trained on ({detail})",
                "build features with the model's feature spec (features.build_features / build_latest)",
            )
        return X


def _as_frame(X: pd.DataFrame | np.ndarray, names: np.ndarray | None = None) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        return X
    arr = np.asarray(X, dtype=np.float64)
    cols = list(names) if names is not None and arr.shape[1] == len(names) else [f"f{i}" for i in range(arr.shape[1])]
    return pd.DataFrame(arr, columns=cols)


def _sample_weights(y: np.ndarray, weights: dict[Any, float] | None) -> np.ndarray:
    if weights is None:
        return np.ones(len(y))
    return np.array([weights.get(v, 1.0) for v in y])
