"""`aiotrade backtest --policy models:/<name>@<alias>`: a registered policy bundle in the backtester.

The bundle gives the Policy (its per-regime table and hysteresis) and the regimes: its classifier
predicts a raw regime and probability for every bar whose features exist (the first
`bundle.warmup_bars` bars of the loaded range have none: -1, no regime armed), and the simulator
applies the bundle's hysteresis, exactly as the live runner does bar by bar.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import numpy as np
import pandas as pd

from strategies.policy import Policy

RegimeSource = Callable[[str, pd.DataFrame], tuple[np.ndarray, np.ndarray | None]]


def is_registry_uri(spec: str | None) -> bool:
    return bool(spec) and str(spec).startswith("models:/")


@cache
def _bundle(uri: str):  # -> models.policy_bundle.PolicyBundle, loaded once per process
    from models.policy_bundle import load_policy_bundle

    return load_policy_bundle(uri)


def bundle_policy(uri: str) -> tuple[Policy, str]:
    """(Policy, label) of the bundle at `uri`; ModelError when there is none."""
    bundle = _bundle(uri)
    return bundle.policy, bundle.version


def bundle_regimes(uri: str) -> RegimeSource:
    """Raw regime and probability per bar from the bundle's own classifier and feature spec."""
    from features import build_features
    from models.evaluate import align_proba

    bundle = _bundle(uri)

    def source(pair: str, candles: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
        ts = candles["ts"].to_numpy()
        raw = np.full(len(ts), -1, dtype=np.int64)
        prob = np.zeros(len(ts))
        X = build_features(candles, bundle.spec)
        if len(X):
            proba = align_proba(bundle.classifier.predict_proba(X), bundle.classifier.classes_)
            pos = np.searchsorted(ts, X.index.to_numpy())
            raw[pos], prob[pos] = np.argmax(proba, axis=1), proba.max(axis=1)
        return raw, prob

    return source
