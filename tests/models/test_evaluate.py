"""Metrics and baselines: log loss column order, persistence semantics, and the CV on real candles."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import log_loss

from features import make_spec
from models.baselines import MISSING, MajorityBaseline, PersistenceBaseline
from models.classifier import RegimeClassifier
from models.dataset import build_dataset
from models.evaluate import PROBA_COLUMNS, align_proba, cross_validate, scores
from models.labels import REGIMES, LabelRule
from models.split import WalkForwardSplit
from tests.features.conftest import load_sample


def test_log_loss_matches_a_hand_computation_in_regimes_order():
    y = np.array(["range", "trend_up", "high_volatility"], dtype=object)
    proba = np.array([[0.1, 0.1, 0.7, 0.1], [0.6, 0.2, 0.1, 0.1], [0.25, 0.25, 0.25, 0.25]])  # REGIMES order
    want = -np.mean(np.log([0.7, 0.6, 0.25]))
    assert scores(y, y, proba)["log_loss"] == pytest.approx(want)
    sorted_cols = [REGIMES.index(r) for r in sorted(REGIMES)]
    assert log_loss(y, proba[:, sorted_cols], labels=sorted(REGIMES)) == pytest.approx(want)


def test_align_proba_places_columns_by_name():
    classes = np.array(["range", "trend_up"])
    out = align_proba(np.array([[0.3, 0.7]]), classes)
    assert out[0, REGIMES.index("trend_up")] == 0.7 and out[0, REGIMES.index("high_volatility")] == 0


def test_persistence_predicts_the_last_completed_regime_with_transition_probabilities():
    prev = np.array(["range", "range", "trend_up", "range", MISSING], dtype=object)
    now = np.array(["range", "trend_up", "trend_up", "range", "range"], dtype=object)
    p = PersistenceBaseline().fit(prev, now)
    assert list(p.predict(prev)) == ["range", "range", "trend_up", "range", "range"]  # MISSING -> majority
    proba = p.predict_proba(np.array(["range"], dtype=object))[0]
    # from "range": 2x range, 1x trend_up, add-one smoothed over the 2 classes seen -> 3/5, 2/5
    assert dict(zip(p.classes_, proba, strict=True)) == pytest.approx({"range": 0.6, "trend_up": 0.4})
    m = MajorityBaseline().fit(now)
    assert m.majority_ == "range" and m.predict_proba(2).sum(axis=1) == pytest.approx([1, 1])


def test_cross_validation_on_real_candles_keeps_out_of_fold_rows_apart():
    spec = make_spec("5m", ["15m", "1h"])
    candles = {"BTC/USDT": load_sample("BTC/USDT").iloc[:6000]}
    ds = build_dataset(candles, spec, LabelRule(12), folds=2, embargo_bars=12)
    split = WalkForwardSplit(2, 12 * 300_000)
    cv = cross_validate(ds, split, lambda: RegimeClassifier(n_estimators=20, n_jobs=1, embargo_ms=12 * 300_000))
    assert set(cv.folds["model"]) == {"lightgbm", "persistence", "logistic", "majority"}
    assert len(cv.folds) == 8 and cv.folds[["macro_f1", "balanced_accuracy", "log_loss"]].notna().all().all()
    oof = cv.oof
    assert not oof.duplicated(["pair", "ts"]).any()
    for fold in split.split(ds.ts):
        rows = oof[oof["fold"] == fold.number]
        assert rows["ts"].min() >= fold.test_start_ms and ds.ts[fold.train].max() < rows["ts"].min() - 12 * 300_000
    assert np.allclose(oof[PROBA_COLUMNS].sum(axis=1), 1)
    assert "persistence" in cv.verdict() and cv.confusion["lightgbm"].to_numpy().sum() == len(oof)
