"""The feature spec: which features, on which timeframes, with which warm-up, under which version.

A model stores its spec (JSON) next to itself; loading compares it with `make_spec(...)` from the
running code and refuses a model whose spec differs (`FeatureSpec.require_same_as_code`). The hash
covers the version, the timeframes and every (name, timeframe, warm-up) in column order, so a
renamed, added, reordered or re-defined feature (version bump) changes it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from core.errors import ConfigError, ModelError
from core.timeframes import is_multiple, sort_timeframes, timeframe_ms
from features.catalog import FEATURE_SET_VERSION, TEMPLATE, TIME_FEATURES


@dataclass(frozen=True)
class FeatureDef:
    name: str
    timeframe: str
    # bars of `timeframe` the value depends on (the window ending at the bar)
    warmup_bars: int


@dataclass(frozen=True)
class FeatureSpec:
    version: int
    base_timeframe: str
    # higher timeframes, ascending; the base timeframe is not repeated here
    timeframes: tuple[str, ...]
    features: tuple[FeatureDef, ...]

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def all_timeframes(self) -> list[str]:
        return [self.base_timeframe, *self.timeframes]

    @cached_property  # read every bar by the live runner; the spec is frozen, so computed once
    def warmup_base_bars(self) -> int:
        """Base bars (without gaps) a row needs behind it, whatever the higher-timeframe alignment.

        A feature on a timeframe r base bars long with warm-up W needs W closed candles; the last
        one closed up to r-1 base bars before the row's close, hence W*r + r - 1.
        """
        base_ms = timeframe_ms(self.base_timeframe)
        need = 1
        for f in self.features:
            r = timeframe_ms(f.timeframe) // base_ms
            need = max(need, f.warmup_bars * r + r - 1)
        return need

    @property
    def hash(self) -> str:
        canon = json.dumps(self._body(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canon.encode()).hexdigest()[:16]

    def _body(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "base_timeframe": self.base_timeframe,
            "timeframes": list(self.timeframes),
            "features": [[f.name, f.timeframe, f.warmup_bars] for f in self.features],
        }

    def to_dict(self) -> dict[str, Any]:
        return {**self._body(), "warmup_base_bars": self.warmup_base_bars, "hash": self.hash}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureSpec:
        try:
            spec = cls(
                version=int(d["version"]),
                base_timeframe=str(d["base_timeframe"]),
                timeframes=tuple(str(t) for t in d["timeframes"]),
                features=tuple(FeatureDef(str(n), str(t), int(w)) for n, t, w in d["features"]),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ModelError(f"stored feature spec is malformed ({e!r})", "retrain the model with `aiotrade train`") from None
        if "hash" in d and d["hash"] != spec.hash:
            raise ModelError("stored feature spec does not match its own hash (edited or corrupt)", "retrain the model with `aiotrade train`")
        return spec

    @classmethod
    def from_json(cls, text: str) -> FeatureSpec:
        return cls.from_dict(json.loads(text))

    def differences(self, other: FeatureSpec) -> list[str]:
        """Human-readable differences, empty when the specs are the same."""
        diffs = []
        if self.version != other.version:
            diffs.append(f"feature set version {self.version} vs {other.version}")
        if self.all_timeframes != other.all_timeframes:
            diffs.append(f"timeframes {self.all_timeframes} vs {other.all_timeframes}")
        mine, theirs = set(self.features), set(other.features)
        if mine - theirs:
            diffs.append("only in the model: " + ", ".join(sorted(f.name for f in mine - theirs)[:8]))
        if theirs - mine:
            diffs.append("only in the code: " + ", ".join(sorted(f.name for f in theirs - mine)[:8]))
        if not diffs and self.features != other.features:
            diffs.append("same features in a different column order")
        return diffs

    def require_same_as_code(self) -> FeatureSpec:
        """The code's spec for the same timeframes; ModelError when this (stored) spec differs."""
        code = make_spec(self.base_timeframe, list(self.timeframes))
        diffs = self.differences(code)
        if diffs:
            raise ModelError(
                f"the model was trained with feature spec {self.hash} but this code builds {code.hash}: " + "; ".join(diffs),
                "retrain with `aiotrade train` on this code version, or run the code version the model was trained with",
            )
        return code


def make_spec(base_timeframe: str, feature_timeframes: list[str]) -> FeatureSpec:
    """The spec this code builds for a base timeframe plus higher timeframes."""
    base_ms = timeframe_ms(base_timeframe)
    higher = sort_timeframes(feature_timeframes)
    for tf in higher:
        if tf == base_timeframe or not is_multiple(tf, base_timeframe) or timeframe_ms(tf) <= base_ms:
            raise ConfigError(
                f"feature timeframe {tf!r} must be a whole multiple of the base timeframe {base_timeframe!r} and larger",
                "fix market.feature_timeframes",
            )
    defs = [FeatureDef(f"{base_timeframe}_{s}", base_timeframe, w) for s, w in TIME_FEATURES.items()]
    for tf in [base_timeframe, *higher]:
        defs += [FeatureDef(f"{tf}_{s}", tf, w) for s, w in TEMPLATE.items()]
    return FeatureSpec(FEATURE_SET_VERSION, base_timeframe, tuple(higher), tuple(defs))
