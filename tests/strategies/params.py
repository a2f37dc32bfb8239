"""Hypothesis strategies for valid engine parameters, policies and run settings (shared by the tests)."""

from __future__ import annotations

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st
from pydantic import ValidationError

from core.config import DcaConfig, GridConfig
from strategies.policy import Policy, RegimeParams
from strategies.risk import RunSettings


@st.composite
def grid_params(draw, ref_price: float) -> GridConfig:
    fixed = draw(st.booleans())
    kw = dict(
        spacing=draw(st.sampled_from(["arithmetic", "geometric"])),
        grid_step_pct=draw(st.floats(0.1, 2.0)),
        levels=draw(st.integers(2, 30)),
        order_size_quote=draw(st.floats(8.0, 60.0)),
        trailing_up=draw(st.booleans()),
    )
    if fixed:
        below, above = draw(st.floats(0.005, 0.08)), draw(st.floats(0.005, 0.08))
        kw.update(range_mode="fixed", lower_price=ref_price * (1 - below), upper_price=ref_price * (1 + above))
    else:
        kw.update(range_mode="dynamic")
        if draw(st.booleans()):  # an ATR-sized range (half-width k x ATR over atr_bars closed bars)
            kw.update(range_atr_mult=draw(st.floats(0.5, 12.0)), atr_bars=draw(st.integers(1, 60)))
    if draw(st.booleans()):
        kw["stop_loss_price"] = ref_price * (1 - draw(st.floats(0.09, 0.2)))
    if draw(st.booleans()):
        kw["take_profit_price"] = ref_price * (1 + draw(st.floats(0.09, 0.3)))
    try:
        return GridConfig(**kw)
    except ValidationError:
        assume(False)
        raise


@st.composite
def dca_params(draw) -> DcaConfig:
    kw = dict(
        base_order_quote=draw(st.floats(8.0, 60.0)),
        safety_order_quote=draw(st.floats(8.0, 60.0)),
        max_safety_orders=draw(st.integers(0, 8)),
        price_deviation_pct=draw(st.floats(0.2, 3.0)),
        step_scale=draw(st.floats(0.8, 1.5)),
        volume_scale=draw(st.floats(0.8, 1.8)),
        take_profit_pct=draw(st.floats(0.2, 3.0)),
        cooldown_bars=draw(st.integers(0, 20)),
    )
    if draw(st.booleans()):
        kw["trailing_take_profit_pct"] = draw(st.floats(0.1, 1.0))
    if draw(st.booleans()):
        kw["stop_loss_pct"] = draw(st.floats(1.0, 15.0))
    try:
        return DcaConfig(**kw)
    except ValidationError:
        assume(False)
        raise


@st.composite
def regime_params(draw, ref_price: float) -> RegimeParams:
    engine = draw(st.sampled_from(["grid", "dca", "grid", "dca", "none"]))
    return RegimeParams(engine=engine, grid=draw(grid_params(ref_price)), dca=draw(dca_params()))


@st.composite
def policies(draw, ref_price: float, max_regimes: int = 3) -> Policy:
    n = draw(st.integers(1, max_regimes))
    return Policy(regimes={i: draw(regime_params(ref_price)) for i in range(n)},
                  min_dwell_bars=draw(st.integers(0, 6)), min_regime_probability=draw(st.floats(0.0, 0.9)))


@st.composite
def run_settings(draw) -> RunSettings:
    return RunSettings(
        capital_quote=draw(st.floats(150.0, 3000.0)),
        max_exposure_pct=draw(st.floats(20.0, 100.0)),
        max_drawdown_pct=draw(st.sampled_from([0.0, 2.0, 5.0, 25.0])),
        daily_loss_limit_pct=draw(st.sampled_from([0.0, 1.0, 3.0, 10.0])),
        sell_inventory_on_kill=draw(st.booleans()),
        touch_fills=draw(st.booleans()),
    )


def regime_series(seed: int, n_bars: int, n_regimes: int) -> tuple[np.ndarray, np.ndarray]:
    """Blocks of random regimes (some -1 = no prediction) with random probabilities."""
    rng = np.random.default_rng(seed)
    block = int(rng.integers(5, 200))
    ids = rng.integers(-1, n_regimes, size=n_bars // block + 1)
    raw = np.repeat(ids, block)[:n_bars]
    return raw.astype(np.int64), rng.uniform(0.0, 1.0, size=n_bars)
