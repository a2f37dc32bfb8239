"""The policy bundle: one registered pyfunc model; loaded by alias it predicts regime, probability, params."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from core.config import DcaConfig, GridConfig
from core.errors import ModelError
from core.store import CandleStore
from features import FeatureDef, FeatureSpec, build_features, make_spec
from models.classifier import RegimeClassifier
from models.evaluate import align_proba
from models.labels import REGIMES, LabelRule, label_regimes
from models.policy_bundle import (
    PolicyBundle,
    alias_version,
    load_policy_bundle,
    log_policy_bundle,
    set_alias,
)
from models.registry import use_store
from strategies.policy import Policy, RegimeParams
from tests.pipeline.tiny_policy import empty_mlflow_db

SAMPLE = Path(__file__).resolve().parents[2] / "pipeline" / "sample_data"


@pytest.fixture(scope="module")
def candles() -> pd.DataFrame:
    return CandleStore(SAMPLE).load("binance", "BTC/USDT", "5m").iloc[:5000].reset_index(drop=True)


@pytest.fixture(scope="module")
def classifier(candles: pd.DataFrame) -> tuple[RegimeClassifier, FeatureSpec]:
    spec = make_spec("5m", ["15m", "1h"])
    X = build_features(candles, spec)
    y = label_regimes(candles, LabelRule(24), "5m").dropna()
    rows = X.index.intersection(y.index)
    clf = RegimeClassifier(n_estimators=15, early_stopping_rounds=None, n_jobs=1, min_child_samples=20)
    return clf.fit(X.loc[rows], y.loc[rows].to_numpy()), spec


def _policy() -> Policy:
    return Policy(regimes={
        0: RegimeParams(engine="grid", grid=GridConfig(grid_step_pct=0.7, levels=12, order_size_quote=25.0)),
        1: RegimeParams(engine="none"),
        2: RegimeParams(engine="dca", dca=DcaConfig(max_safety_orders=4, volume_scale=1.3)),
        3: RegimeParams(engine="none"),
    }, min_dwell_bars=2, min_regime_probability=0.4)


def _bundle(classifier) -> PolicyBundle:
    clf, spec = classifier
    return PolicyBundle(clf, _policy(), spec, ("BTC/USDT", "ETH/USDT"), "binance", ("15m", "1h"),
                        evaluation={"adaptive policy": {"return_pct": 1.5}},
                        fallbacks={"high_volatility": "never predicted"})


@pytest.fixture()
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{empty_mlflow_db(tmp_path / 'mlflow.db')}"
    use_store(uri, "bundle-test")
    return uri


def test_register_without_alias_then_alias_last_and_load_by_alias(classifier, candles, store) -> None:
    bundle = _bundle(classifier)
    with mlflow.start_run():
        version = log_policy_bundle(bundle, "pol")
    assert version == "1"
    assert alias_version("pol", "champion") is None  # registered, but nothing carries the alias yet
    set_alias("pol", "champion", version)
    loaded = load_policy_bundle("models:/pol@champion")
    assert loaded.version == "pol/1"
    assert loaded.policy == bundle.policy
    assert loaded.pairs == ("BTC/USDT", "ETH/USDT") and loaded.exchange == "binance"
    assert loaded.base_timeframe == "5m" and loaded.feature_timeframes == ("15m", "1h")
    assert loaded.regime_names == dict(enumerate(REGIMES))
    assert loaded.evaluation == bundle.evaluation and loaded.fallbacks == bundle.fallbacks
    assert loaded.warmup_bars == bundle.spec.warmup_base_bars

    # The newest bar's regime equals the classifier on the full feature matrix for that bar.
    window = candles.iloc[-loaded.warmup_bars:]
    rid, prob = loaded.predict("BTC/USDT", window)
    clf, spec = classifier
    full = build_features(candles, spec)
    expected = align_proba(clf.predict_proba(full.iloc[[-1]]), clf.classes_)[0]
    assert rid == int(np.argmax(expected)) and prob == pytest.approx(expected.max())
    assert loaded.params(rid)["engine"] == bundle.policy.regimes[rid].engine


def test_pyfunc_predict_gives_one_row_per_pair(classifier, candles, store) -> None:
    with mlflow.start_run():
        version = log_policy_bundle(_bundle(classifier), "pol")
    set_alias("pol", "champion", version)
    model = mlflow.pyfunc.load_model("models:/pol@champion")
    window = candles.iloc[-2000:]
    both = pd.concat([window.assign(pair="BTC/USDT"), window.iloc[:-10].assign(pair="ETH/USDT")])
    out = model.predict(both)
    assert list(out["pair"]) == ["BTC/USDT", "ETH/USDT"]
    assert list(out["ts"]) == [int(window["ts"].iloc[-1]), int(window["ts"].iloc[-11])]
    for _, row in out.iterrows():
        assert row["regime"] == REGIMES[row["regime_id"]]
        assert 0.0 < row["probability"] <= 1.0
        params = json.loads(row["params_json"])
        assert params["engine"] == row["engine"] == _policy().regimes[row["regime_id"]].engine


def test_a_bundle_whose_feature_spec_differs_from_the_code_is_refused(classifier, store) -> None:
    clf, spec = classifier
    other = FeatureSpec(spec.version, spec.base_timeframe, spec.timeframes,
                        (*spec.features[:-1], FeatureDef("not_a_feature", "5m", 3)))
    bundle = _bundle(classifier)
    bundle.spec = other
    with mlflow.start_run():
        version = log_policy_bundle(bundle, "pol")
    set_alias("pol", "champion", version)
    with pytest.raises(ModelError, match="feature spec"):
        load_policy_bundle("models:/pol@champion")


def test_no_bundle_at_the_alias_says_run_train_first(store) -> None:
    with pytest.raises(ModelError) as e:
        load_policy_bundle("models:/nothing@champion")
    assert "aiotrade train" in (e.value.fix or "")


def test_live_array_window_gives_the_frame_path_s_probabilities_exactly(classifier, candles) -> None:
    """predict_proba from (ts, ohlcv arrays) — the live runner's form — equals the frame path and the
    scikit-learn classifier on the full feature matrix, bit for bit, bar after bar (memoised higher candles)."""
    bundle = _bundle(classifier)
    clf, spec = classifier
    full = build_features(candles, spec)
    ohlcv = candles[["open", "high", "low", "close", "volume"]].to_numpy()
    ts = candles["ts"].to_numpy()
    n = bundle.warmup_bars
    for end in range(len(candles) - 30, len(candles) + 1):
        expected = align_proba(clf.predict_proba(full.loc[[ts[end - 1]]]), clf.classes_)[0]
        np.testing.assert_array_equal(bundle.predict_proba((ts[end - n:end], ohlcv[end - n:end])), expected)
        np.testing.assert_array_equal(bundle.predict_proba(candles.iloc[end - n - 5:end]), expected)


def test_a_classifier_fitted_on_other_columns_is_refused_before_predicting(classifier, candles) -> None:
    clf, spec = classifier
    reordered = FeatureSpec(spec.version, spec.base_timeframe, spec.timeframes, tuple(reversed(spec.features)))
    bundle = PolicyBundle(clf, _policy(), reordered, ("BTC/USDT",), "binance", ("15m", "1h"))
    with pytest.raises(ModelError, match="other order"):
        bundle.predict("BTC/USDT", candles.iloc[-bundle.warmup_bars:])
