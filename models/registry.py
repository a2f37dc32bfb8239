"""MLflow tracking and model registry for the regime model.

- Store: `MLFLOW_TRACKING_URI` from the environment wins, else config mlflow.tracking_uri (default
  `sqlite:///mlruns/mlflow.db`). The file store is refused by MLflow 3, so the default is SQLite;
  a team can point the variable at a tracking server. The registry uses the same URI.
- Artifacts: for a SQLite store they go beside the database (`mlruns/<experiment>/...`), set
  explicitly when the experiment is created, so nothing depends on the current directory
  (pipeline/ui.py serves the same folder).
- The model is logged with the sklearn flavour (cloudpickle; loading needs this package installed,
  which it must be anyway for the feature code), `pyfunc_predict_fn="predict_proba"` so a pyfunc
  load returns probabilities (columns = `classes`), an explicit signature and input example, and
  explicit pip requirements (inferring them costs ~6 s). The feature spec travels in the model's
  metadata; `load_regime_model` refuses a model whose spec differs from the code's.
- Nothing secret is logged: `redacted` masks secret-looking keys and passwords inside URLs.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

from core.errors import ConfigError, ModelError
from features import FeatureSpec
from models.classifier import RegimeClassifier

MODEL_ARTIFACT = "regime_model"
_PINNED = ("lightgbm", "scikit-learn", "pandas", "numpy", "scipy", "cloudpickle", "numba")
_SECRET_KEY = re.compile(r"(secret|passphrase|password|token|api_?key|credential)", re.IGNORECASE)


# What use_store last handed to mlflow.set_tracking_uri, and whether it came from the environment.
# Why: MLflow 3's set_tracking_uri also writes MLFLOW_TRACKING_URI into os.environ (so child processes
# inherit it), so after one use_store the variable no longer tells a user's choice from ours; a second
# use_store with another config would otherwise keep the first store.
_set_by_us: tuple[str, bool] | None = None


def tracking_uri(configured: str) -> str:
    """MLFLOW_TRACKING_URI set by the user wins over the config; the value MLflow wrote there for us does not."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if not env:
        return configured
    if _set_by_us is not None and env == _set_by_us[0] and not _set_by_us[1]:
        return configured
    return env


def use_store(configured_uri: str, experiment: str) -> str:
    """Point MLflow (tracking and registry) at the store, activate the experiment (created if needed), return its id."""
    uri = tracking_uri(configured_uri)
    if uri.startswith("file:") or ("://" not in uri and not uri.startswith("databricks")):
        raise ConfigError(
            f"MLflow tracking URI {uri!r} is a plain folder, which MLflow 3 refuses",
            "use sqlite:///mlruns/mlflow.db (the default) or an http(s):// tracking server",
        )
    db = _sqlite_path(uri)
    if db is not None:
        db.parent.mkdir(parents=True, exist_ok=True)
        if not db.exists() and "?" not in str(db):
            create_sqlite_store(db)
    global _set_by_us
    from_env = uri != configured_uri
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    _set_by_us = (uri, from_env)
    found = mlflow.get_experiment_by_name(experiment)
    if found is not None:
        experiment_id = found.experiment_id
    else:
        location = (db.parent.resolve() / _slug(experiment)).as_uri() if db is not None else None
        experiment_id = mlflow.create_experiment(experiment, artifact_location=location)
    # Active from now on: a bare start_run() would otherwise use MLflow's "Default" experiment,
    # whose artifacts go to ./mlruns of whatever the current directory is.
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def create_sqlite_store(db: Path) -> None:
    """A new, empty MLflow SQLite database at `db`, built by MLflow's own code on a temp file without
    per-statement fsyncs, then synced once and linked into place.

    MLflow builds a new database by running its whole migration history, each step committed with an
    fsync: 7.7 s of wall here for 2.6 s of CPU, the largest fixed cost of a first `aiotrade quickstart`.
    With `PRAGMA synchronous=OFF` on a temp file it took 0.8 s; the file is fsynced before it appears
    under its real name, so a crash never leaves a half-built database there, and `os.link` refuses to
    replace one another process created meanwhile (that one wins, the temp file goes)."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    tmp = db.with_name(f".{db.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)

    def unsynced(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA synchronous=OFF")
        cur.close()

    event.listen(Engine, "connect", unsynced)  # only while this one store is built
    try:
        SqlAlchemyStore(f"sqlite:///{tmp}", str(db.parent.resolve())).engine.dispose()
    finally:
        event.remove(Engine, "connect", unsynced)
    try:
        for path, flags in ((tmp, os.O_RDONLY), (db.parent, os.O_RDONLY)):
            fd = os.open(path, flags)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.link(tmp, db)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)


def pip_requirements() -> list[str]:
    """The libraries the pickled model needs, pinned to the installed versions."""
    reqs = []
    for dist in _PINNED:
        try:
            reqs.append(f"{dist}=={metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            continue
    return reqs


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    version: str
    alias: str | None
    model_uri: str  # models:/<name>/<version>
    run_id: str


def log_regime_model(
    model: RegimeClassifier, spec: FeatureSpec, X_example: pd.DataFrame, registered_name: str | None, alias: str | None
) -> RegisteredModel | None:
    """Log the fitted model into the active run; register it and move `alias` to it when a name is given."""
    run = mlflow.active_run()
    if run is None:
        raise RuntimeError("log_regime_model needs an active MLflow run")
    example = X_example.head(5)
    signature = infer_signature(example, pd.DataFrame(model.predict_proba(example), columns=list(model.classes_)))
    info = mlflow.sklearn.log_model(
        model,
        name=MODEL_ARTIFACT,
        serialization_format="cloudpickle",
        pyfunc_predict_fn="predict_proba",
        signature=signature,
        input_example=example,
        pip_requirements=pip_requirements(),
        metadata={"feature_spec": spec.to_dict(), "feature_spec_hash": spec.hash, "classes": list(map(str, model.classes_))},
        registered_model_name=registered_name,
    )
    if not registered_name:
        return None
    version = str(info.registered_model_version)
    if alias:
        MlflowClient().set_registered_model_alias(registered_name, alias, version)
    return RegisteredModel(registered_name, version, alias, f"models:/{registered_name}/{version}", run.info.run_id)


@dataclass(frozen=True)
class LoadedRegimeModel:
    classifier: RegimeClassifier
    spec: FeatureSpec  # the code's spec, equal to the stored one
    uri: str
    run_id: str | None


def load_regime_model(uri: str) -> LoadedRegimeModel:
    """Load `models:/<name>@<alias>` (or any model URI) after checking its feature spec against the code's."""
    try:
        info = mlflow.models.get_model_info(uri)
    except (MlflowException, OSError) as e:
        raise ModelError(
            f"no regime model at {uri} ({_first_line(e)})",
            "train and register one with `aiotrade train`, or check the name/alias and MLFLOW_TRACKING_URI",
        ) from None
    meta = info.metadata or {}
    if "feature_spec" not in meta:
        raise ModelError(f"{uri} carries no feature spec: it is not a regime model logged by aiotrade", "retrain with `aiotrade train`")
    code_spec = FeatureSpec.from_dict(meta["feature_spec"]).require_same_as_code()
    model = mlflow.sklearn.load_model(uri)
    if not isinstance(model, RegimeClassifier):
        raise ModelError(f"{uri} holds a {type(model).__name__}, not a RegimeClassifier", "retrain with `aiotrade train`")
    if list(model.feature_names_in_) != code_spec.names:
        raise ModelError(f"{uri}: the model's feature columns differ from its stored spec", "retrain with `aiotrade train`")
    return LoadedRegimeModel(model, code_spec, uri, info.run_id)


def redacted(data: Any) -> Any:
    """A copy with secret-looking keys masked and passwords removed from URLs (safe to log)."""
    if isinstance(data, dict):
        return {k: ("***" if _SECRET_KEY.search(str(k)) and v else redacted(v)) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [redacted(v) for v in data]
    if isinstance(data, str) and "://" in data and "@" in data:
        return _mask_url(data)
    return data


def _mask_url(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return "***"
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _sqlite_path(uri: str) -> Path | None:
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri.removeprefix("sqlite:///"))


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "experiment"


def _first_line(e: Exception) -> str:
    return str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
