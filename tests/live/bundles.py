"""Small real policy bundles for the live tests: a LightGBM regime model fitted on the bundled candles,
registered in a throw-away MLflow store, loadable by alias exactly as `aiotrade live` loads them."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import mlflow
import pandas as pd

from core.config import DcaConfig, GridConfig
from core.store import CandleStore
from features import build_features, make_spec
from models.classifier import RegimeClassifier
from models.labels import LabelRule, label_regimes
from models.policy_bundle import PolicyBundle, log_policy_bundle, set_alias
from models.registry import use_store
from strategies.policy import Policy, RegimeParams

SAMPLE = Path(__file__).resolve().parents[2] / "pipeline" / "sample_data"
FEATURE_TFS = ("1h",)


@lru_cache(maxsize=2)
def classifier(feature_tfs: tuple[str, ...] = FEATURE_TFS) -> RegimeClassifier:
    candles = CandleStore(SAMPLE).load("binance", "BTC/USDT", "5m").iloc[:6000].reset_index(drop=True)
    spec = make_spec("5m", list(feature_tfs))
    X = build_features(candles, spec)
    y = label_regimes(candles, LabelRule(24), "5m").dropna()
    rows = X.index.intersection(y.index)
    clf = RegimeClassifier(n_estimators=15, early_stopping_rounds=None, n_jobs=1, min_child_samples=20)
    return clf.fit(X.loc[rows], y.loc[rows].to_numpy())


def grid_policy(step_pct: float = 0.1) -> Policy:
    g = GridConfig(grid_step_pct=step_pct, levels=6, order_size_quote=60.0)
    return Policy(regimes={i: RegimeParams(engine="grid", grid=g) for i in range(4)}, min_dwell_bars=0,
                  min_regime_probability=0.0)


def dca_policy() -> Policy:
    d = DcaConfig(base_order_quote=50.0, safety_order_quote=50.0, max_safety_orders=3, price_deviation_pct=0.2,
                  step_scale=1.0, volume_scale=1.0, take_profit_pct=0.2)
    return Policy(regimes={i: RegimeParams(engine="dca", dca=d) for i in range(4)}, min_dwell_bars=0,
                  min_regime_probability=0.0)


def mixed_policy() -> Policy:
    """Regime-dependent: grids in trends and ranges, a pause when volatility is high."""
    g = GridConfig(grid_step_pct=0.12, levels=6, order_size_quote=60.0)
    d = DcaConfig(base_order_quote=50.0, safety_order_quote=50.0, max_safety_orders=3, price_deviation_pct=0.25,
                  step_scale=1.0, volume_scale=1.0, take_profit_pct=0.25)
    return Policy(regimes={0: RegimeParams(engine="grid", grid=g), 1: RegimeParams(engine="dca", dca=d),
                           2: RegimeParams(engine="grid", grid=g), 3: RegimeParams(engine="none")},
                  min_dwell_bars=2, min_regime_probability=0.4)


def bundle(policy: Policy, pairs=("BTC/USDT", "ETH/USDT"), exchange: str = "binance",
           clf: object | None = None, feature_tfs: tuple[str, ...] = FEATURE_TFS) -> PolicyBundle:
    model = clf if clf is not None else classifier(feature_tfs)
    return PolicyBundle(model, policy, make_spec("5m", list(feature_tfs)), tuple(pairs), exchange, feature_tfs)


def open_registry(tmp: Path, monkeypatch) -> str:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    use_store(uri, "live-test")
    return uri


def register(b: PolicyBundle, name: str = "aiotrade-policy", alias: str | None = "champion") -> str:
    with mlflow.start_run():
        version = log_policy_bundle(b, name)
    assert version is not None
    if alias:
        set_alias(name, alias, version)
    return version


def candles(pair: str = "BTC/USDT") -> pd.DataFrame:
    return CandleStore(SAMPLE).load("binance", pair, "5m")
