"""The regime classifier keeps the scikit-learn contract, learns, and respects the embargo."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from core.errors import ModelError
from models.classifier import RegimeClassifier
from models.split import time_holdout

CLASSES = np.array(["high_volatility", "range", "trend_down", "trend_up"], dtype=object)


def toy(n: int = 3000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Four classes separable by two of five features, with noise; rows in time order."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 5)), columns=[f"f{i}" for i in range(5)])
    y = CLASSES[(X["f0"] > 0).to_numpy().astype(int) * 2 + (X["f1"] > 0.8).to_numpy().astype(int)]
    flip = rng.random(n) < 0.05
    y[flip] = rng.choice(CLASSES, flip.sum())
    ts = np.arange(n, dtype=np.int64) * 300_000
    return X, y, ts


def small(**kw) -> RegimeClassifier:
    params = dict(n_estimators=60, min_child_samples=20, n_jobs=1, early_stopping_rounds=10, embargo_ms=24 * 300_000)
    params.update(kw)
    return RegimeClassifier(**params)


def test_init_only_stores_params_and_clone_works():
    m = small(learning_rate=0.1)
    assert m.get_params()["learning_rate"] == 0.1
    assert not [k for k in vars(m) if k.endswith("_")]
    c = clone(m)
    assert c.get_params() == m.get_params() and c is not m


def test_fit_returns_self_and_learns():
    X, y, ts = toy()
    m = small()
    assert m.fit(X.iloc[:2400], y[:2400], ts_ms=ts[:2400]) is m
    assert list(m.classes_) == sorted(CLASSES)
    assert list(m.feature_names_in_) == list(X.columns) and m.n_features_in_ == 5
    proba = m.predict_proba(X.iloc[2400:])
    assert proba.shape == (600, 4) and np.allclose(proba.sum(axis=1), 1)
    pred = m.predict(X.iloc[2400:])
    assert (pred == m.classes_[proba.argmax(axis=1)]).all()
    assert (pred == y[2400:]).mean() > 0.85  # 5% label noise; a separable problem is learnt
    assert 1 <= m.best_iteration_ <= 60
    gain = m.gain_importance_
    assert set(gain.index[:2]) == {"f0", "f1"}


def test_early_stopping_slice_sits_after_the_embargo():
    X, y, ts = toy(2000)
    m = small(validation_fraction=0.2).fit(X, y, ts_ms=ts)
    fit, val = time_holdout(ts, 0.2, 24 * 300_000)
    assert m.validation_rows_ == len(val) == 400
    assert ts[fit].max() < ts[val].min() - 24 * 300_000


def test_same_seed_same_model():
    X, y, ts = toy(1500)
    a = small(random_state=7).fit(X, y, ts_ms=ts).predict_proba(X)
    b = small(random_state=7).fit(X, y, ts_ms=ts).predict_proba(X)
    np.testing.assert_array_equal(a, b)


def test_features_in_another_order_are_refused():
    X, y, ts = toy(1200)
    m = small().fit(X, y, ts_ms=ts)
    with pytest.raises(ModelError, match="same names, other order"):
        m.predict_proba(X[list(reversed(X.columns))])
    with pytest.raises(ModelError, match="missing"):
        m.predict(X.drop(columns="f4"))


def test_class_weights_lift_a_rare_class():
    X, y, ts = toy(3000, seed=3)
    rare = (X["f2"] > 1.8).to_numpy()  # ~3.6% of rows
    y = np.where(rare, "high_volatility", np.where(X["f0"] > 0, "trend_up", "range")).astype(object)
    weighted = small(class_weight="balanced").fit(X, y, ts_ms=ts).predict(X)
    plain = small(class_weight=None).fit(X, y, ts_ms=ts).predict(X)
    recall = lambda pred: (pred[rare] == "high_volatility").mean()  # noqa: E731
    assert recall(weighted) >= recall(plain)


@pytest.mark.parametrize("kw", [{}, {"refit_full": False}, {"early_stopping_rounds": None}])
def test_one_row_predict_equals_predict_proba_bit_for_bit(kw):
    """The live runner's booster path (numpy row, no pandas) gives exactly the scikit-learn path's numbers,
    with early stopping kept (best iteration) or refitted."""
    X, y, ts = toy()
    m = small(**kw).fit(X.iloc[:2400], y[:2400], ts_ms=ts[:2400])
    m.require_features(list(X.columns))
    expected = m.predict_proba(X.iloc[2400:])
    got = np.array([m.predict_proba_row(X.iloc[i].to_numpy(dtype=np.float64)) for i in range(2400, 3000)])
    np.testing.assert_array_equal(got, expected)


def test_require_features_refuses_other_columns_and_an_unfitted_model():
    X, y, ts = toy(1000)
    m = small().fit(X, y, ts_ms=ts)
    with pytest.raises(ModelError, match="same names, other order"):
        m.require_features(list(reversed(X.columns)))
    with pytest.raises(ModelError, match="missing"):
        m.require_features([*X.columns[:-1], "other"])
    with pytest.raises(NotFittedError):
        small().require_features(list(X.columns))
