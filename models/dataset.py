"""The pooled training set: features + regime labels + persistence labels for several pairs.

Rows are sorted by (ts, pair), so row order is time order for every consumer (walk-forward splits,
the early-stopping slice). Pairs are pooled because the features are scale-free: one model serves
every pair, and more pairs give more regimes to learn from.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.candles import Gap, find_gaps, fmt_ts
from core.errors import DataError
from core.timeframes import timeframe_ms
from features import FeatureSpec, build_features
from models.baselines import MISSING
from models.labels import LabelRule, label_regimes

# Each walk-forward block (and so each test fold) must hold at least this many bars, and twice the embargo.
MIN_BLOCK_BARS = 288


@dataclass(frozen=True)
class PairStats:
    pair: str
    candles: int
    first_ts: int
    last_ts: int
    gaps: tuple[Gap, ...]
    rows: int  # bars with features and a label


@dataclass
class Dataset:
    X: pd.DataFrame  # RangeIndex, columns spec.names
    y: np.ndarray  # regime per row (object array of str)
    y_prev: np.ndarray  # label of the bar H bars back (persistence), MISSING when unknown
    ts: np.ndarray  # int64 bar open time
    pair: np.ndarray  # object array of str
    close: np.ndarray  # bar close, for plots
    spec: FeatureSpec
    rule: LabelRule
    stats: list[PairStats]


def minimum_bars(spec: FeatureSpec, rule: LabelRule, folds: int, embargo_bars: int) -> int:
    """Consecutive base bars one pair needs: warm-up, trailing label window, horizon, CV blocks."""
    behind = max(spec.warmup_base_bars - 1, rule.trail_bars)
    return behind + rule.horizon_bars + (folds + 1) * block_bars(embargo_bars)


def block_bars(embargo_bars: int) -> int:
    return max(MIN_BLOCK_BARS, 2 * embargo_bars)


def build_dataset(candles: dict[str, pd.DataFrame], spec: FeatureSpec, rule: LabelRule, folds: int, embargo_bars: int) -> Dataset:
    """Features and labels of every pair, pooled and time-sorted; DataError when a pair has too little."""
    parts, stats = [], []
    need = minimum_bars(spec, rule, folds, embargo_bars)
    base_ms = timeframe_ms(spec.base_timeframe)
    for pair, df in candles.items():
        X = build_features(df, spec)
        labels = label_regimes(df, rule, spec.base_timeframe)
        rows = X.index.intersection(labels.index)
        gaps = find_gaps(df["ts"].to_numpy(), base_ms)
        if len(rows) < (folds + 1) * block_bars(embargo_bars):
            raise _too_little(pair, df, gaps, need, spec, rule, folds)
        prev = labels.reindex(rows - rule.horizon_bars * base_ms).fillna(MISSING).to_numpy(dtype=object)
        close = df.set_index("ts")["close"].reindex(rows).to_numpy()
        parts.append((pair, X.loc[rows], labels.loc[rows].to_numpy(dtype=object), prev, close))
        ts = df["ts"].to_numpy()
        stats.append(PairStats(pair, len(df), int(ts[0]), int(ts[-1]), gaps, len(rows)))
    X = pd.concat([p[1] for p in parts])
    ts = X.index.to_numpy()
    pair = np.concatenate([np.full(len(p[1]), p[0], dtype=object) for p in parts])
    order = np.lexsort((pair, ts))
    ds = Dataset(
        X=X.iloc[order].reset_index(drop=True),
        y=np.concatenate([p[2] for p in parts])[order],
        y_prev=np.concatenate([p[3] for p in parts])[order],
        ts=ts[order],
        pair=pair[order],
        close=np.concatenate([p[4] for p in parts])[order],
        spec=spec,
        rule=rule,
        stats=stats,
    )
    if len(np.unique(ds.ts)) < (folds + 1) * block_bars(embargo_bars):
        raise DataError(
            f"{len(np.unique(ds.ts))} labelled bars are too few for {folds}-fold walk-forward validation; "
            f"each pair needs at least {need} consecutive {spec.base_timeframe} candles",
            "download more history, or lower model.cv_folds",
        )
    return ds


def _too_little(pair: str, df: pd.DataFrame, gaps: tuple[Gap, ...], need: int, spec: FeatureSpec, rule: LabelRule, folds: int) -> DataError:
    longest = _longest_run(df["ts"].to_numpy(), timeframe_ms(spec.base_timeframe))
    gap_note = f" (longest run without gaps: {longest}; {len(gaps)} gap(s))" if gaps else ""
    return DataError(
        f"too little data: {pair} {spec.base_timeframe} has {len(df)} candles{gap_note}; at least {need} consecutive "
        f"candles are needed: {spec.warmup_base_bars} of feature warm-up (longest timeframe "
        f"{spec.all_timeframes[-1]}), {rule.trail_bars} behind and {rule.horizon_bars} ahead for the labels, "
        f"and {folds + 1} walk-forward blocks",
        "download more history (`aiotrade download`), drop the longest market.feature_timeframes, "
        "or lower model.horizon_bars / model.cv_folds",
    )


def _longest_run(ts: np.ndarray, step_ms: int) -> int:
    if not len(ts):
        return 0
    cuts = np.flatnonzero(np.diff(ts) != step_ms) + 1
    bounds = np.r_[0, cuts, len(ts)]
    return int(np.diff(bounds).max())


def data_fingerprint(exchange: str, timeframe: str, candles: dict[str, pd.DataFrame]) -> dict:
    """What the model was trained on: exchange, pairs, timeframe, spans, rows and a content hash."""
    digest = hashlib.sha256()
    pairs = {}
    for pair in sorted(candles):
        df = candles[pair]
        for col in ("ts", "open", "high", "low", "close", "volume"):
            digest.update(np.ascontiguousarray(df[col].to_numpy()).tobytes())
        ts = df["ts"].to_numpy()
        pairs[pair] = {
            "rows": len(df),
            "first": fmt_ts(int(ts[0])) if len(ts) else None,
            "last": fmt_ts(int(ts[-1])) if len(ts) else None,
            "first_ts": int(ts[0]) if len(ts) else None,
            "last_ts": int(ts[-1]) if len(ts) else None,
            "gaps": len(find_gaps(ts, timeframe_ms(timeframe))),
        }
    return {
        "exchange": exchange,
        "timeframe": timeframe,
        "pairs": pairs,
        "rows": sum(p["rows"] for p in pairs.values()),
        "content_sha256": digest.hexdigest(),
    }
