"""MLflow store, model logging/registration/alias, loading with the feature-spec check (temp SQLite store)."""

from __future__ import annotations

import os
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from core.errors import ConfigError, ModelError
from features import build_features, make_spec
from models.classifier import RegimeClassifier
from models.labels import LabelRule, label_regimes
from models.registry import load_regime_model, log_regime_model, redacted, tracking_uri, use_store
from tests.features.conftest import load_sample


@pytest.fixture(scope="module")
def fitted():
    candles = load_sample("BTC/USDT").iloc[:4000]
    spec = make_spec("5m", ["15m", "1h"])
    X = build_features(candles, spec)
    y = label_regimes(candles, LabelRule(12), "5m")
    rows = X.index.intersection(y.index)
    model = RegimeClassifier(n_estimators=15, early_stopping_rounds=None, n_jobs=1, min_child_samples=20)
    return model.fit(X.loc[rows], y.loc[rows].to_numpy()), spec, X.loc[rows]


@pytest.fixture()
def store(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")  # whatever the current directory, nothing may land in it
    uri = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    use_store(uri, "registry-test")
    return tmp_path


def test_log_register_alias_and_load_by_alias(fitted, store):
    model, spec, X = fitted
    with mlflow.start_run() as run:
        reg = log_regime_model(model, spec, X, "regime-test", "champion")
    assert reg is not None and reg.version == "1" and reg.run_id == run.info.run_id
    loaded = load_regime_model("models:/regime-test@champion")
    assert loaded.spec == spec and loaded.run_id == run.info.run_id
    np.testing.assert_array_equal(loaded.classifier.predict_proba(X.tail(50)), model.predict_proba(X.tail(50)))
    # pyfunc gives probabilities (columns = classes), not labels
    out = mlflow.pyfunc.load_model("models:/regime-test@champion").predict(X.tail(3))
    assert np.asarray(out).shape == (3, len(model.classes_))
    info = mlflow.models.get_model_info("models:/regime-test@champion")
    assert info.signature is not None and info.metadata["feature_spec_hash"] == spec.hash
    assert info.saved_input_example_info is not None
    # artifacts sit beside the temp database, never in the working directory's mlruns/
    exp = mlflow.get_experiment_by_name("registry-test")
    assert exp.artifact_location.startswith((store / "mlruns").as_uri())
    assert mlflow.get_run(run.info.run_id).info.experiment_id == exp.experiment_id
    assert list((store / "mlruns" / "registry-test").rglob("MLmodel"))
    assert not any((store / "cwd").iterdir())


def test_a_second_version_moves_the_alias(fitted, store):
    model, spec, X = fitted
    for _ in range(2):
        with mlflow.start_run():
            reg = log_regime_model(model, spec, X, "regime-twice", "champion")
    assert reg is not None and reg.version == "2"
    v = mlflow.MlflowClient().get_model_version_by_alias("regime-twice", "champion")
    assert str(v.version) == "2"


def test_model_whose_feature_spec_differs_from_the_code_is_refused(fitted, store, monkeypatch):
    model, spec, X = fitted
    with mlflow.start_run():
        log_regime_model(model, spec, X, "regime-old", "champion")
    monkeypatch.setattr("features.spec.FEATURE_SET_VERSION", spec.version + 1)
    with pytest.raises(ModelError) as e:
        load_regime_model("models:/regime-old@champion")
    assert f"feature set version {spec.version} vs {spec.version + 1}" in e.value.problem
    assert "aiotrade train" in (e.value.fix or "")


def test_missing_model_says_train_first(store):
    with pytest.raises(ModelError) as e:
        load_regime_model("models:/no-such-model@champion")
    assert "no regime model at models:/no-such-model@champion" in e.value.problem
    assert "aiotrade train" in (e.value.fix or "")


def test_environment_overrides_the_configured_uri(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert tracking_uri("sqlite:///mlruns/mlflow.db") == "http://127.0.0.1:5999"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert tracking_uri("sqlite:///mlruns/mlflow.db") == "sqlite:///mlruns/mlflow.db"


@pytest.mark.parametrize("uri", ["file:./mlruns", "mlruns", "/tmp/mlruns"])
def test_plain_folder_store_is_refused(uri, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(ConfigError, match="plain folder"):
        use_store(uri, "x")


def test_redacted_masks_secrets_and_url_passwords():
    data = {
        "exchange": {"secrets_file": "/home/u/.aiotrade/secrets.toml", "api_key": "", "name": "binance"},
        "tuning": {"storage": "postgresql://bot:hunter2@db.local:5432/aiotrade"},
        "mlflow": {"tracking_uri": "sqlite:///mlruns/mlflow.db"},
        "nested": [{"password": "p4ss"}],
    }
    out = redacted(data)
    text = repr(out)
    assert "hunter2" not in text and "p4ss" not in text
    assert out["tuning"]["storage"] == "postgresql://bot:***@db.local:5432/aiotrade"
    assert out["exchange"]["secrets_file"] == "***" and out["exchange"]["api_key"] == ""
    assert out["mlflow"]["tracking_uri"] == "sqlite:///mlruns/mlflow.db" and out["exchange"]["name"] == "binance"
    assert Path(out["mlflow"]["tracking_uri"].removeprefix("sqlite:///")).name == "mlflow.db"


def test_a_new_sqlite_store_is_built_aside_and_linked_into_place(tmp_path) -> None:
    import sqlite3

    from models.registry import create_sqlite_store

    db = tmp_path / "store" / "mlflow.db"
    db.parent.mkdir()
    create_sqlite_store(db)
    assert sorted(p.name for p in db.parent.iterdir()) == ["mlflow.db"]  # no temp file left
    tables = {r[0] for r in sqlite3.connect(db).execute("select name from sqlite_master where type='table'")}
    assert {"experiments", "runs", "registered_models", "model_versions", "alembic_version"} <= tables
    # MLflow accepts it as up to date (it would refuse an outdated schema) and writes to it.
    client = MlflowClient(tracking_uri=f"sqlite:///{db}", registry_uri=f"sqlite:///{db}")
    exp = client.create_experiment("x")
    client.create_registered_model("m")
    assert client.get_experiment(exp).name == "x"
    # Another process created it first: that one is kept, untouched.
    before = db.read_bytes()
    create_sqlite_store(db)
    assert db.read_bytes() == before and sorted(p.name for p in db.parent.iterdir()) == ["mlflow.db"]


def test_a_second_store_in_one_process_is_not_shadowed_by_mlflows_own_env_write(tmp_path, monkeypatch):
    # MLflow 3's set_tracking_uri writes MLFLOW_TRACKING_URI into os.environ; that must not be read back
    # as the user's choice (it sent a second config's runs into the first config's store).
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "unset-at-teardown")  # records the original value for the undo
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    first, second = f"sqlite:///{tmp_path / 'a' / 'mlflow.db'}", f"sqlite:///{tmp_path / 'b' / 'mlflow.db'}"
    use_store(first, "exp")
    assert os.environ.get("MLFLOW_TRACKING_URI") == first  # what MLflow does
    use_store(second, "exp")
    assert mlflow.get_tracking_uri() == second
    # A value the user sets afterwards still wins, and keeps winning on the next call.
    user = f"sqlite:///{tmp_path / 'user' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", user)
    use_store(second, "exp")
    assert mlflow.get_tracking_uri() == user
    use_store(second, "exp")
    assert mlflow.get_tracking_uri() == user
