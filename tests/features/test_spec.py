from __future__ import annotations

import json

import pytest

from core.errors import ConfigError, ModelError
from features.catalog import TEMPLATE, TIME_FEATURES
from features.spec import FeatureDef, FeatureSpec, make_spec


def test_spec_lists_every_feature_with_timeframe_and_warmup():
    spec = make_spec("5m", ["4h", "15m", "1h"])
    assert spec.timeframes == ("15m", "1h", "4h")
    assert len(spec.names) == len(TIME_FEATURES) + 4 * len(TEMPLATE)
    assert len(set(spec.names)) == len(spec.names)
    adx_4h = next(f for f in spec.features if f.name == "4h_adx_14")
    assert adx_4h == FeatureDef("4h_adx_14", "4h", TEMPLATE["adx_14"])
    # 4h = 48 bars of 5m: W candles plus up to 47 bars since the last 4h close
    assert spec.warmup_base_bars == max(TEMPLATE.values()) * 48 + 47


def test_round_trip_and_hash_are_stable():
    spec = make_spec("5m", ["15m", "1h"])
    again = FeatureSpec.from_json(spec.to_json())
    assert again == spec and again.hash == spec.hash
    assert make_spec("5m", ["1h", "15m"]).hash == spec.hash
    assert make_spec("5m", ["15m", "4h"]).hash != spec.hash


def test_tampered_spec_is_refused():
    d = make_spec("5m", ["1h"]).to_dict()
    d["features"][3][2] += 1
    with pytest.raises(ModelError, match="does not match its own hash"):
        FeatureSpec.from_dict(d)
    with pytest.raises(ModelError, match="malformed"):
        FeatureSpec.from_dict({"version": 1})


def test_stored_spec_differing_from_code_fails_clearly():
    code = make_spec("5m", ["1h"])
    old = json.loads(code.to_json())
    old["version"] = 0
    old["features"] = old["features"][:-1] + [["1h_old_feature", "1h", 5]]
    del old["hash"]
    stored = FeatureSpec.from_dict(old)
    with pytest.raises(ModelError) as e:
        stored.require_same_as_code()
    msg = e.value.message
    assert "feature set version 0 vs 1" in msg and "only in the model: 1h_old_feature" in msg
    assert "only in the code: 1h_rvol_rank_48" in msg and "aiotrade train" in msg
    assert code.require_same_as_code() == code


def test_timeframes_must_be_multiples_of_base():
    with pytest.raises(ConfigError, match="whole multiple"):
        make_spec("15m", ["5m"])
    with pytest.raises(ConfigError, match="unknown timeframe"):
        make_spec("5m", ["7m"])
