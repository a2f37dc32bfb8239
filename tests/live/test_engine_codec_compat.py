"""Engine-state blobs across engine versions: the ATR fields appended to the state, old blobs still load."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from core.config import GridConfig
from core.market_rules import MarketRules
from live import engine_codec
from strategies.engine import Engine
from strategies.layout import F_PREV_CLOSE, G_TR, I_ATR_N
from strategies.policy import Policy, RegimeParams
from strategies.risk import RunSettings
from strategies.state import EngineState

RULES = MarketRules("BTC/USDT", 0.01, 0.00001, 0.00001, 5.0)


def _trade(policy: Policy) -> Engine:
    eng = Engine(policy, RULES, RunSettings(1000.0))
    price = 20_000.0
    for i in range(40):
        eng.step(i * 300_000, price, price * 1.001, price * 0.995, price * 0.997)
        price *= 0.997
    return eng


def _v1_blob(eng: Engine) -> bytes:
    """The blob the previous version wrote: no widths in the header, the arrays before the ATR fields."""
    s, rows, parts = eng.state, [], []
    for f, w in zip(("sf", "si", "grid", "legacy", "orders"), (29, 34, 7, 5, 9), strict=True):
        a = getattr(s, f)
        if a.ndim == 2:
            used = np.flatnonzero(a.any(axis=1))
            a = a[: int(used[-1]) + 1 if used.size else 0, :w]
        else:
            a = a[:w]
        rows.append(a.shape[0])
        parts.append(np.ascontiguousarray(a).tobytes())
    return b"AIOE1" + struct.pack("<5q", *rows) + b"".join(parts)


def test_an_atr_grid_state_round_trips():
    eng = _trade(Policy.single(RegimeParams(engine="grid", grid=GridConfig(range_atr_mult=3.0, atr_bars=10))))
    assert eng.state.si[I_ATR_N] == 40 and eng.state.grid[:40, G_TR].min() > 0
    assert engine_codec.decode(engine_codec.encode(eng.state)).equals(eng.state)


def test_a_blob_saved_before_the_atr_fields_loads_with_them_fresh():
    eng = _trade(Policy.single(RegimeParams(engine="grid")))
    assert eng.inventory > 0
    old = engine_codec.decode(_v1_blob(eng))
    assert old.si[I_ATR_N] == 0 and np.isnan(old.sf[F_PREV_CLOSE])  # fresh: the next bar has no previous close
    for f in ("legacy", "orders"):
        np.testing.assert_array_equal(getattr(old, f), getattr(eng.state, f))
    np.testing.assert_array_equal(old.sf[:29], eng.state.sf[:29])
    np.testing.assert_array_equal(old.si[:34], eng.state.si[:34])
    np.testing.assert_array_equal(old.grid[:, :7], eng.state.grid[:, :7])
    with pytest.raises(ValueError, match="unknown format"):
        engine_codec.decode(b"XXXX" + _v1_blob(eng)[4:])


def _rowwise_blob(s) -> bytes:
    """The encoder as first written (rows trimmed by a row-wise `any`): the oracle for the faster trim."""
    rows, parts = [], []
    for f in ("sf", "si", "grid", "legacy", "orders"):
        a = getattr(s, f)
        if a.ndim == 2:
            used = np.flatnonzero(a.any(axis=1))
            a = a[: int(used[-1]) + 1 if used.size else 0]
        rows.append(a.shape[0])
        parts.append(np.ascontiguousarray(a).tobytes())
    widths = [getattr(s, f).shape[-1] for f in ("sf", "si", "grid", "legacy", "orders")]
    return b"AIOE2" + struct.pack("<5q", *rows) + struct.pack("<5q", *widths) + b"".join(parts)


def test_the_row_trim_equals_the_rowwise_rule_byte_for_byte():
    """Trailing rows of zeros are dropped; a row with only -0.0 counts as empty, NaN or inf as used."""
    rng = np.random.default_rng(7)
    eng = _trade(Policy.single(RegimeParams(engine="grid")))
    states = [eng.state, EngineState.new(1000.0)]
    for _ in range(200):
        s = EngineState.new(1000.0)
        for f in ("grid", "legacy", "orders"):
            a = getattr(s, f)
            for _ in range(int(rng.integers(0, 4))):
                r, c = int(rng.integers(0, a.shape[0])), int(rng.integers(0, a.shape[1]))
                a[r, c] = rng.choice([1.5, -2.0, -0.0, np.nan, np.inf, 1e-300])
        states.append(s)
    s = EngineState.new(1000.0)
    s.orders[-1, -1] = np.nan  # the very last element
    s.grid[:, :] = -0.0  # all "zero"
    states.append(s)
    for s in states:
        assert engine_codec.encode(s) == _rowwise_blob(s)
