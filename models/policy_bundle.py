"""The policy bundle: everything the live runner needs, as ONE registered MLflow pyfunc model.

A bundle holds the regime classifier, the per-regime parameter table (`strategies.policy.Policy`,
regime ids in `models.labels.REGIMES` order), the feature spec, the timeframes, the pairs and exchange
it was trained for, and the evaluation summary (the out-of-sample table). `models:/<name>@champion`
is all a caller needs:

    bundle = load_policy_bundle("models:/aiotrade-policy@champion")
    regime_id, prob = bundle.predict("BTC/USDT", newest_candles)   # >= bundle.warmup_bars base candles
    params = bundle.policy.regimes[regime_id]                       # RegimeParams for the engine

or through MLflow alone: `mlflow.pyfunc.load_model(uri).predict(candles)` returns one row per pair
(pair, ts, regime_id, regime, probability, engine, params_json) for the newest bar. Raw predictions
only: the hysteresis is applied by the engine at the close (`strategies.regime.hysteresis`), in the
backtest and live alike.

Artifacts (readable in the MLflow UI): `classifier.joblib`, `policy.json`, `bundle.json` (spec,
regimes, timeframes, pairs, exchange, evaluation, fallbacks). Loading checks that the stored feature
spec is the one this code builds and refuses a bundle whose spec differs.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema

from core.errors import ModelError
from features import FeatureSpec, candle_arrays, latest_row
from models.classifier import RegimeClassifier
from models.evaluate import align_proba
from models.labels import REGIMES
from models.registry import pip_requirements
from strategies.policy import Policy

ARTIFACT_PATH = "policy"
BUNDLE_FORMAT = 1
CANDLE_COLUMNS = ("ts", "open", "high", "low", "close", "volume")
ENTRY_FILE = Path(__file__).with_name("policy_bundle_entry.py")


@dataclass
class PolicyBundle:
    """The loaded bundle. Satisfies the live runner's ActivePolicy protocol (`live.policy_source`)."""

    classifier: RegimeClassifier
    policy: Policy
    spec: FeatureSpec
    pairs: tuple[str, ...]
    exchange: str
    feature_timeframes: tuple[str, ...]
    evaluation: dict[str, Any] = field(default_factory=dict)
    fallbacks: dict[str, str] = field(default_factory=dict)  # regime -> why it runs the safe default
    regimes: tuple[str, ...] = REGIMES
    version: str = "unregistered"  # "<name>/<version>" once loaded from the registry
    meta: dict[str, Any] = field(default_factory=dict)
    # the classifier's columns were checked against the spec (at load, else at the first prediction)
    _columns_checked: bool = field(default=False, init=False, repr=False, compare=False)

    @property
    def base_timeframe(self) -> str:
        return self.spec.base_timeframe

    @property
    def regime_names(self) -> dict[int, str]:
        return dict(enumerate(self.regimes))

    @property
    def warmup_bars(self) -> int:
        """Base candles (without gaps) the newest feature row needs."""
        return self.spec.warmup_base_bars

    def predict_proba(self, window: pd.DataFrame | tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """Regime probabilities (REGIMES order) of the newest bar of `window`: base candles, newest last, as
        a frame or as (open times, (n, 5) open/high/low/close/volume array) — the live runner's form."""
        if isinstance(window, pd.DataFrame):
            need = self.spec.warmup_base_bars
            ts, ohlcv = candle_arrays(window.iloc[-need:] if len(window) > need else window)
        else:
            ts, ohlcv = window
        row = latest_row(ts, ohlcv, self.spec)
        if not self._columns_checked:  # once per bundle, not per bar (a hot loop in the live runner)
            self.classifier.require_features(self.spec.names)
            self._columns_checked = True
        return align_proba(self.classifier.predict_proba_row(row)[None, :], self.classifier.classes_)[0]

    def predict(self, pair: str, window: pd.DataFrame | tuple[np.ndarray, np.ndarray]) -> tuple[int, float]:
        """(regime id, probability) for the newest bar; the pair is accepted for the protocol's sake."""
        proba = self.predict_proba(window)
        rid = int(np.argmax(proba))
        return rid, float(proba[rid])

    def params(self, regime_id: int) -> dict[str, Any]:
        rp = self.policy.regimes[regime_id]
        out: dict[str, Any] = {"engine": rp.engine}
        if rp.engine == "grid":
            out["grid"] = rp.grid.model_dump(mode="json", exclude_none=True)
        elif rp.engine == "dca":
            out["dca"] = rp.dca.model_dump(mode="json", exclude_none=True)
        return out

    def describe(self) -> dict[str, Any]:
        """Everything but the classifier, as plain JSON data (bundle.json)."""
        return {
            "format": BUNDLE_FORMAT,
            "regimes": list(self.regimes),
            "feature_spec": self.spec.to_dict(),
            "base_timeframe": self.base_timeframe,
            "feature_timeframes": list(self.feature_timeframes),
            "pairs": list(self.pairs),
            "exchange": self.exchange,
            "hysteresis": {"min_dwell_bars": self.policy.min_dwell_bars,
                           "min_regime_probability": self.policy.min_regime_probability},
            "evaluation": self.evaluation,
            "fallbacks": self.fallbacks,
            "meta": self.meta,
        }


class PolicyBundleModel(mlflow.pyfunc.PythonModel):
    """The pyfunc wrapper: artifacts in, `PolicyBundle` out (`self.bundle` after load_context)."""

    bundle: PolicyBundle | None = None

    def load_context(self, context: Any) -> None:
        self.bundle = _read_bundle(context.artifacts)

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        if self.bundle is None:
            raise ModelError("the policy bundle was not loaded", "load it with mlflow.pyfunc.load_model")
        frame = pd.DataFrame(model_input)
        groups = frame.groupby("pair", sort=False) if "pair" in frame.columns else [("", frame)]
        rows = []
        for pair, window in groups:
            candles = window[list(CANDLE_COLUMNS)].sort_values("ts").reset_index(drop=True)
            rid, prob = self.bundle.predict(str(pair), candles)
            rows.append({"pair": str(pair), "ts": int(candles["ts"].iloc[-1]), "regime_id": rid,
                         "regime": self.bundle.regimes[rid], "probability": prob,
                         "engine": self.bundle.policy.regimes[rid].engine,
                         "params_json": json.dumps(self.bundle.params(rid))})
        return pd.DataFrame(rows)


def _read_bundle(artifacts: dict[str, str]) -> PolicyBundle:
    meta = json.loads(Path(artifacts["bundle"]).read_text(encoding="utf-8"))
    if meta.get("format") != BUNDLE_FORMAT:
        raise ModelError(f"policy bundle format {meta.get('format')} is not {BUNDLE_FORMAT}",
                         "retrain with `aiotrade train` on this code version")
    spec = FeatureSpec.from_dict(meta["feature_spec"]).require_same_as_code()
    raw = json.loads(Path(artifacts["policy"]).read_text(encoding="utf-8"))
    raw["regimes"] = {int(k): v for k, v in raw["regimes"].items()}
    bundle = PolicyBundle(
        classifier=joblib.load(artifacts["classifier"]),
        policy=Policy.model_validate(raw),
        spec=spec,
        pairs=tuple(meta["pairs"]),
        exchange=meta["exchange"],
        feature_timeframes=tuple(meta["feature_timeframes"]),
        evaluation=meta.get("evaluation", {}),
        fallbacks=meta.get("fallbacks", {}),
        regimes=tuple(meta["regimes"]),
        meta=meta.get("meta", {}),
    )
    if hasattr(bundle.classifier, "model_"):  # fitted: its columns must be the spec's, checked here once
        bundle.classifier.require_features(spec.names)
        bundle._columns_checked = True
    return bundle


def signature() -> ModelSignature:
    inputs = Schema([ColSpec("long", "ts"), *(ColSpec("double", c) for c in CANDLE_COLUMNS[1:]),
                     ColSpec("string", "pair", required=False)])
    outputs = Schema([ColSpec("string", "pair"), ColSpec("long", "ts"), ColSpec("long", "regime_id"),
                      ColSpec("string", "regime"), ColSpec("double", "probability"), ColSpec("string", "engine"),
                      ColSpec("string", "params_json")])
    return ModelSignature(inputs=inputs, outputs=outputs)


def log_policy_bundle(bundle: PolicyBundle, registered_name: str | None) -> str | None:
    """Log the bundle into the active run and register a NEW version WITHOUT any alias; returns the version.

    Moving an alias is a separate, last step (`set_alias`), so a crash in between leaves the registry's
    aliases where they were; the version carries the tag aiotrade.status=candidate until then."""
    if mlflow.active_run() is None:
        raise RuntimeError("log_policy_bundle needs an active MLflow run")
    with tempfile.TemporaryDirectory() as tmp:
        paths = {"classifier": Path(tmp) / "classifier.joblib", "policy": Path(tmp) / "policy.json",
                 "bundle": Path(tmp) / "bundle.json"}
        joblib.dump(bundle.classifier, paths["classifier"])
        paths["policy"].write_text(json.dumps(bundle.policy.model_dump(mode="json"), indent=1), encoding="utf-8")
        paths["bundle"].write_text(json.dumps(bundle.describe(), indent=1, default=str), encoding="utf-8")
        with warnings.catch_warnings():
            # No input example on purpose: a valid one is a whole warm-up window (~1,300 candles).
            warnings.filterwarnings("ignore", message=".*input example was not provided.*")
            info = _log_model(bundle, paths, registered_name)
    if not registered_name:
        return None
    version = str(info.registered_model_version)
    mlflow.tracking.MlflowClient().set_model_version_tag(registered_name, version, "aiotrade.status", "candidate")
    return version


def _log_model(bundle: PolicyBundle, paths: dict[str, Path], registered_name: str | None) -> Any:
    return mlflow.pyfunc.log_model(
        name=ARTIFACT_PATH,
        python_model=str(ENTRY_FILE),
        artifacts={k: str(v) for k, v in paths.items()},
        signature=signature(),
        pip_requirements=pip_requirements(),
        metadata={"aiotrade_bundle_format": BUNDLE_FORMAT, "feature_spec_hash": bundle.spec.hash,
                  "pairs": list(bundle.pairs), "exchange": bundle.exchange,
                  "base_timeframe": bundle.base_timeframe, "regimes": list(bundle.regimes)},
        registered_model_name=registered_name,
    )


def set_alias(name: str, alias: str, version: str, status: str = "champion") -> None:
    """The last step of a promotion: point `alias` at `version` (and tag the version)."""
    client = mlflow.tracking.MlflowClient()
    client.set_registered_model_alias(name, alias, version)
    client.set_model_version_tag(name, version, "aiotrade.status", status)


def alias_version(name: str, alias: str) -> str | None:
    """The version an alias points at, or None when the model or the alias does not exist."""
    try:
        return str(mlflow.tracking.MlflowClient().get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def load_policy_bundle(uri: str) -> PolicyBundle:
    """Load `models:/<name>@<alias>` (or any model URI) as a PolicyBundle; ModelError when it is not one."""
    try:
        model = mlflow.pyfunc.load_model(uri)
    except (MlflowException, OSError) as e:
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise ModelError(f"no policy bundle at {uri} ({first})",
                         "run `aiotrade train` first, or check the model name/alias and MLFLOW_TRACKING_URI") from None
    inner = model.unwrap_python_model() if hasattr(model, "unwrap_python_model") else None
    if not isinstance(inner, PolicyBundleModel) or inner.bundle is None:
        raise ModelError(f"{uri} is not an aiotrade policy bundle", "register one with `aiotrade train`")
    bundle = inner.bundle
    bundle.version = _version_label(uri)
    return bundle


def _version_label(uri: str) -> str:
    """'<name>/<version>' for registry URIs (aliases resolved), else the URI itself."""
    if not uri.startswith("models:/"):
        return uri
    ref = uri.removeprefix("models:/")
    if "@" in ref:
        name, alias = ref.split("@", 1)
        version = alias_version(name, alias)
        return f"{name}/{version}" if version else ref
    return ref
