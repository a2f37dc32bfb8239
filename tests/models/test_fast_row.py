"""LightGBM's single-row fast path (models.fast_row) equals Booster.predict bit for bit, including NaN
and infinite features, a booster stopped early, and after the model went through joblib."""

from __future__ import annotations

import io
import threading

import joblib
import numpy as np
import pytest

from models.fast_row import predict_row
from tests.models.test_classifier import small, toy


def _rows(X):
    rows = X.to_numpy(dtype=np.float64)[2400:2700].copy()
    rows[::7, 0] = np.nan
    rows[::11, 1] = np.inf
    rows[::13, 2] = -np.inf
    return rows


@pytest.mark.parametrize("kw", [{}, {"refit_full": False}])
def test_fast_row_equals_booster_predict(kw):
    X, y, ts = toy()
    booster = small(**kw).fit(X.iloc[:2400], y[:2400], ts_ms=ts[:2400]).model_.booster_
    rows = _rows(X)
    expected = booster.predict(rows, num_threads=1)
    got = np.array([predict_row(booster, r) for r in rows])
    np.testing.assert_array_equal(got, expected)


def test_a_model_that_predicted_still_saves_and_predicts_the_same_after_loading():
    X, y, ts = toy()
    m = small().fit(X.iloc[:2400], y[:2400], ts_ms=ts[:2400])
    rows = _rows(X)
    before = np.array([m.predict_proba_row(r) for r in rows])
    buf = io.BytesIO()
    joblib.dump(m, buf)  # nothing of the prepared fast path goes with it
    loaded = joblib.load(io.BytesIO(buf.getvalue()))
    np.testing.assert_array_equal(np.array([loaded.predict_proba_row(r) for r in rows]), before)


def test_threads_sharing_one_booster_get_their_own_rows_answers():
    X, y, ts = toy()
    booster = small().fit(X.iloc[:2400], y[:2400], ts_ms=ts[:2400]).model_.booster_
    rows = _rows(X)
    expected = booster.predict(rows, num_threads=1)
    results: dict[int, np.ndarray] = {}

    def work(k: int) -> None:
        results[k] = np.array([predict_row(booster, r) for r in rows[k::4]])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(4):
        np.testing.assert_array_equal(results[k], expected[k::4])


def test_a_row_of_the_wrong_length_is_refused():
    X, y, ts = toy(1000)
    booster = small().fit(X, y, ts_ms=ts).model_.booster_
    with pytest.raises(ValueError, match="one row of 5 features expected"):
        predict_row(booster, np.zeros(4))
