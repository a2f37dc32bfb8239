"""Scale-free multi-timeframe features without lookahead.

Public API (one builder for training, backtest and live):
- `make_spec(base_tf, feature_tfs) -> FeatureSpec`: names, timeframes, warm-ups, version, hash.
- `build_features(candles, spec) -> DataFrame` (index ts, columns spec.names, complete rows only).
- `build_latest(window, spec) -> DataFrame` (one row: the newest bar; needs spec.warmup_base_bars candles).
- `latest_row(ts, ohlcv, spec) -> ndarray`: the same row from numpy columns (the live runner's path).
- `gap_report(candles, spec)`: gaps and the bars they cost.
"""

from features.builder import build_features, gap_report
from features.catalog import FEATURE_SET_VERSION
from features.latest import build_latest, candle_arrays, latest_row
from features.spec import FeatureDef, FeatureSpec, make_spec

__all__ = [
    "FEATURE_SET_VERSION",
    "FeatureDef",
    "FeatureSpec",
    "build_features",
    "build_latest",
    "candle_arrays",
    "gap_report",
    "latest_row",
    "make_spec",
]
