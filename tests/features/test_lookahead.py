"""The two standing no-lookahead properties, and live == training, on real candles (hypothesis).

1. Features up to bar t do not change when later bars are appended (nor do rows appear/vanish).
2. Features do not change when earlier bars are prepended beyond the declared warm-up.
3. The live newest row from a trailing window equals the full build for that bar, bit for bit.
Runs on the bundled sample (always present) and on ../shared data with gaps (skipped without it).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features import FeatureSpec, build_features, build_latest, make_spec
from tests.features.conftest import load_feather, load_sample

SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def assert_same_rows(part: pd.DataFrame, full: pd.DataFrame) -> None:
    assert part.index.equals(full.index), (
        f"rows differ: {len(part)} vs {len(full)}; first differing ts "
        f"{next((a for a, b in zip(part.index, full.index, strict=False) if a != b), 'at the end')}"
    )
    diff = part.to_numpy() != full.to_numpy()
    if diff.any():
        i, j = np.argwhere(diff)[0]
        raise AssertionError(
            f"{diff.sum()} values changed, first {part.columns[j]} at ts {part.index[i]}: "
            f"{part.iat[i, j]!r} vs {full.iat[i, j]!r}"
        )


def check_append(df: pd.DataFrame, full: pd.DataFrame, cut: int) -> None:
    part = build_features(df.iloc[:cut], SPEC_OF[id(df)])
    assert_same_rows(part, full[full.index <= df["ts"].iloc[cut - 1]])


def check_prepend(df: pd.DataFrame, spec: FeatureSpec, start: int, extra: int, length: int) -> None:
    """Frames [start, end) and [start - extra, end): rows past start's warm-up are identical."""
    end = min(len(df), start + length)
    short = build_features(df.iloc[start:end], spec)
    long = build_features(df.iloc[start - extra : end], spec)
    settled = df["ts"].iloc[start + spec.warmup_base_bars - 1]
    assert_same_rows(short[short.index >= settled], long[long.index >= settled])
    # rows the short frame has before `settled` (lucky alignment) are right too
    assert_same_rows(short, long.loc[short.index])


def check_live(df: pd.DataFrame, full: pd.DataFrame, spec: FeatureSpec, t: int, spare: int) -> None:
    ts = df["ts"].iloc[t]
    window = df.iloc[max(0, t + 1 - spec.warmup_base_bars - spare) : t + 1]
    row = build_latest(window, spec)
    assert_same_rows(row, full.loc[[ts]])


SPEC_OF: dict[int, FeatureSpec] = {}


# ---------------------------------------------------------------- bundled sample (always runs)
# Data come from cached functions, not fixture arguments, so a falsifying example prints only
# the drawn values (cut, start, ...) instead of whole frames.

SAMPLE_SPEC = make_spec("5m", ["15m", "1h", "4h"])


@functools.cache
def sample() -> tuple[pd.DataFrame, pd.DataFrame]:
    df = load_sample("BTC/USDT").iloc[:14000].reset_index(drop=True)
    SPEC_OF[id(df)] = SAMPLE_SPEC
    return df, build_features(df, SAMPLE_SPEC)


@SETTINGS
@given(data=st.data())
def test_appending_later_bars_changes_nothing_before(data):
    df, full = sample()
    cut = data.draw(st.integers(SAMPLE_SPEC.warmup_base_bars - 200, len(df)), label="cut")
    check_append(df, full, cut)


@SETTINGS
@given(data=st.data())
def test_prepending_bars_beyond_the_warmup_changes_nothing(data):
    df, _ = sample()
    start = data.draw(st.integers(1, 6000), label="start")
    extra = data.draw(st.integers(1, start), label="extra")
    check_prepend(df, SAMPLE_SPEC, start, extra, SAMPLE_SPEC.warmup_base_bars + 1500)


@SETTINGS
@given(data=st.data())
def test_live_newest_row_equals_the_full_build(data):
    df, full = sample()
    t = data.draw(st.sampled_from(range(SAMPLE_SPEC.warmup_base_bars + 48, len(df))), label="t")
    check_live(df, full, SAMPLE_SPEC, t, data.draw(st.integers(0, 300), label="spare"))


# ---------------------------------------------------------------- ../shared, data with gaps


@functools.cache
def eth_around_gap(root: Path) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    df = load_feather(root / "2023_1h_5m" / "ETH_USDT-5m.feather")
    gap_at = int(np.flatnonzero(np.diff(df["ts"].to_numpy()) != 300_000)[0])
    part = df.iloc[gap_at - 9000 : gap_at + 9000].reset_index(drop=True)
    SPEC_OF[id(part)] = SAMPLE_SPEC
    return part, build_features(part, SAMPLE_SPEC), 9000


@pytest.mark.shared_data
@settings(SETTINGS, max_examples=10)
@given(data=st.data())
def test_shared_eth_with_gap_append_prepend_and_live(shared_ohlcv, data):
    df, full, gap_at = eth_around_gap(shared_ohlcv)
    check_append(df, full, data.draw(st.integers(gap_at - 500, len(df)), label="cut"))
    start = data.draw(st.integers(1, gap_at), label="start")
    check_prepend(df, SAMPLE_SPEC, start, data.draw(st.integers(1, start), label="extra"), 9000)
    live_ok = full.index[full.index > df["ts"].iloc[gap_at]]
    t = int(np.searchsorted(df["ts"].to_numpy(), data.draw(st.sampled_from(list(live_ok)), label="ts")))
    check_live(df, full, SAMPLE_SPEC, t, 0)


ONE_MINUTE_SPEC = make_spec("1m", ["5m", "15m", "1h"])


@functools.cache
def doge_1m(root: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = json.loads((root / "2021-04_05_1m_5m" / "DOGE_USDT-1m.json").read_text())
    df = pd.DataFrame(rows, columns=["ts", "open", "high", "low", "close", "volume"])
    df = df.astype({"ts": np.int64, **{c: np.float64 for c in ("open", "high", "low", "close", "volume")}})
    SPEC_OF[id(df)] = ONE_MINUTE_SPEC
    return df, build_features(df, ONE_MINUTE_SPEC)


@pytest.mark.shared_data
@settings(SETTINGS, max_examples=10)
@given(data=st.data())
def test_shared_doge_1m_append_and_prepend(shared_ohlcv, data):
    """A month of 1m DOGE/USDT with a 284-minute gap."""
    df, full = doge_1m(shared_ohlcv)
    check_append(df, full, data.draw(st.integers(ONE_MINUTE_SPEC.warmup_base_bars, len(df)), label="cut"))
    start = data.draw(st.integers(1, len(df) // 2), label="start")
    check_prepend(df, ONE_MINUTE_SPEC, start, data.draw(st.integers(1, start), label="extra"), 12000)
