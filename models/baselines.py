"""Honest baselines the regime model must beat, fitted on the same training folds.

- Majority: always the most frequent training regime; probabilities = training class shares.
- Persistence: the regime of the last *completed* horizon, i.e. the label of the bar H bars back
  (its look-ahead window ends at the current bar, so it is known now: no lookahead). Probabilities
  = training frequencies of "regime now given regime H bars back" (add-one smoothed), so its log
  loss is a fair number rather than infinity.
- Logistic regression: standardised features, multinomial, balanced class weights.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

MISSING = ""  # persistence label for a bar whose H-bars-back label is unknown (start of data, gap)


class MajorityBaseline:
    def fit(self, y: np.ndarray) -> MajorityBaseline:
        self.classes_, counts = np.unique(y, return_counts=True)
        self.priors_ = counts / counts.sum()
        self.majority_ = self.classes_[np.argmax(counts)]
        return self

    def predict(self, n: int) -> np.ndarray:
        return np.full(n, self.majority_, dtype=object)

    def predict_proba(self, n: int) -> np.ndarray:
        return np.tile(self.priors_, (n, 1))


class PersistenceBaseline:
    def fit(self, y_prev: np.ndarray, y: np.ndarray) -> PersistenceBaseline:
        self.classes_ = np.unique(y)
        self.fallback_ = MajorityBaseline().fit(y)
        table = pd.crosstab(pd.Series(y_prev, name="prev"), pd.Series(y, name="now"))
        table = table.reindex(index=self.classes_, columns=self.classes_, fill_value=0) + 1
        self.transition_ = table.div(table.sum(axis=1), axis=0)
        return self

    def predict(self, y_prev: np.ndarray) -> np.ndarray:
        y_prev = np.asarray(y_prev, dtype=object)
        known = np.isin(y_prev, self.classes_)
        return np.where(known, y_prev, self.fallback_.majority_)

    def predict_proba(self, y_prev: np.ndarray) -> np.ndarray:
        y_prev = np.asarray(y_prev, dtype=object)
        out = self.fallback_.predict_proba(len(y_prev))
        known = np.isin(y_prev, self.classes_)
        if known.any():
            out[known] = self.transition_.loc[y_prev[known]].to_numpy()
        return out


def logistic_baseline(random_state: int = 42) -> Any:
    return make_pipeline(
        StandardScaler(),
        # newton-cholesky converges in a few iterations here; lbfgs hit 300 without converging
        LogisticRegression(solver="newton-cholesky", max_iter=100, class_weight="balanced", random_state=random_state),
    )
