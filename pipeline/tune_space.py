"""What Optuna searches: one regime's strategy, as trial parameters -> `strategies.policy.RegimeParams`.

Every trial suggests the same fixed set of parameters (grid and DCA alike), and `engine` picks which
of them trade. A fixed space lets multivariate TPE model the parameters jointly; conditional spaces
would make it fall back to independent sampling.

Order sizes are not searched: they follow from the pair's capital slice so that the whole grid (every
buy level) or the whole DCA ladder (base order + every safety order, volume-scaled) fits in the
exposure the risk settings allow. A set whose smallest order would then fall below what the venue
accepts is infeasible for this capital and scores the infeasible penalty without a backtest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import ValidationError

from core.config import DcaConfig, GridConfig, StrategyConfig
from strategies.policy import RegimeParams

Engine = Literal["grid", "dca", "none"]
ENGINES: tuple[Engine, ...] = ("grid", "dca", "none")

# Search ranges. Wide enough to contain a tight scalping grid and a slow swing ladder on 5m bars.
GRID_STEP_PCT = (0.1, 5.0)  # log scale
GRID_LEVELS = (4, 40)
DCA_MAX_SAFETY_ORDERS = (0, 12)  # the averaging depth
DCA_DEVIATION_PCT = (0.2, 5.0)  # log scale
DCA_STEP_SCALE = (1.0, 2.0)
DCA_VOLUME_SCALE = (1.0, 2.0)
DCA_TAKE_PROFIT_PCT = (0.2, 5.0)  # log scale
# Share of the allowed exposure the sizing plans for: the rest absorbs fees and lot rounding.
SIZING_SHARE = 0.95

# The documented safe default for a regime that cannot be tuned (never or too rarely predicted):
# no new entries; inventory bought under another regime keeps its exit orders.
SAFE_DEFAULT = RegimeParams(engine="none")


@dataclass(frozen=True)
class Sizing:
    """What order sizes derive from: the quote a pair may hold at once, and the smallest valid order."""

    deployable_quote: float  # pair capital x max exposure
    min_order_quote: float  # the largest of the pairs' smallest valid entry orders


def suggest(trial: Any, engine: Engine | None = None) -> dict[str, Any]:
    """Suggest one regime's parameters on an Optuna trial; `engine` fixes the engine (static baselines)."""
    p: dict[str, Any] = {}
    if engine is None:
        p["engine"] = trial.suggest_categorical("engine", list(ENGINES))
    else:
        p["engine"] = engine
    if engine in (None, "grid"):
        p["grid_step_pct"] = trial.suggest_float("grid_step_pct", *GRID_STEP_PCT, log=True)
        p["grid_levels"] = trial.suggest_int("grid_levels", *GRID_LEVELS)
        p["grid_trailing_up"] = trial.suggest_categorical("grid_trailing_up", [True, False])
    if engine in (None, "dca"):
        p["dca_max_safety_orders"] = trial.suggest_int("dca_max_safety_orders", *DCA_MAX_SAFETY_ORDERS)
        p["dca_price_deviation_pct"] = trial.suggest_float("dca_price_deviation_pct", *DCA_DEVIATION_PCT, log=True)
        p["dca_step_scale"] = trial.suggest_float("dca_step_scale", *DCA_STEP_SCALE)
        p["dca_volume_scale"] = trial.suggest_float("dca_volume_scale", *DCA_VOLUME_SCALE)
        p["dca_take_profit_pct"] = trial.suggest_float("dca_take_profit_pct", *DCA_TAKE_PROFIT_PCT, log=True)
    return p


def dca_ladder_units(max_safety_orders: int, volume_scale: float) -> float:
    """Base order + every safety order, in units of the base order (safety order = base order size)."""
    return 1.0 + float(sum(volume_scale**m for m in range(max_safety_orders)))


def to_regime_params(p: dict[str, Any], sizing: Sizing, strategy: StrategyConfig) -> RegimeParams | None:
    """The trial's parameters as a RegimeParams sized to the capital; None when the set cannot trade:
    orders too small for the venue, or a combination the strategy's own checks refuse (e.g. a safety
    order ladder reaching 100% below the entry)."""
    try:
        return _build(p, sizing, strategy)
    except ValidationError:
        return None


def _build(p: dict[str, Any], sizing: Sizing, strategy: StrategyConfig) -> RegimeParams | None:
    engine: Engine = p["engine"]
    if engine == "none":
        return SAFE_DEFAULT
    budget = sizing.deployable_quote * SIZING_SHARE
    grid, dca = strategy.grid, strategy.dca
    if engine == "grid":
        levels = int(p["grid_levels"])
        size = budget / (levels - 1)
        if size < sizing.min_order_quote:
            return None
        grid = GridConfig(
            spacing=strategy.grid.spacing,
            grid_step_pct=float(p["grid_step_pct"]),
            levels=levels,
            range_mode="dynamic",
            order_size_quote=_round_quote(size),
            trailing_up=bool(p["grid_trailing_up"]),
        )
    else:
        depth = int(p["dca_max_safety_orders"])
        unit = budget / dca_ladder_units(depth, float(p["dca_volume_scale"]))
        if unit < sizing.min_order_quote:
            return None
        dca = DcaConfig(
            base_order_quote=_round_quote(unit),
            safety_order_quote=_round_quote(unit),
            max_safety_orders=depth,
            price_deviation_pct=float(p["dca_price_deviation_pct"]),
            step_scale=float(p["dca_step_scale"]),
            volume_scale=float(p["dca_volume_scale"]),
            take_profit_pct=float(p["dca_take_profit_pct"]),
            trailing_take_profit_pct=strategy.dca.trailing_take_profit_pct,
            stop_loss_pct=strategy.dca.stop_loss_pct,
            cooldown_bars=strategy.dca.cooldown_bars,
        )
    return RegimeParams(engine=engine, grid=grid, dca=dca)


def _round_quote(x: float) -> float:
    """Down to a cent: sizes read well in the policy table and never exceed the budget."""
    return float(np.floor(x * 100.0) / 100.0)


def policy_table(rows: dict[int, RegimeParams], n_regimes: int) -> np.ndarray:
    """The engine's parameter table: the given rows, the safe default for every other regime."""
    return np.ascontiguousarray(np.stack([(rows.get(r) or SAFE_DEFAULT).row() for r in range(n_regimes)]))


def describe(rp: RegimeParams) -> dict[str, Any]:
    """The parameters that matter for the engine a regime runs, for tables, MLflow params and logs."""
    if rp.engine == "grid":
        g = rp.grid
        return {"engine": "grid", "grid_step_pct": round(g.grid_step_pct, 4), "levels": g.levels,
                "order_size_quote": g.order_size_quote, "trailing_up": g.trailing_up, "spacing": g.spacing}
    if rp.engine == "dca":
        d = rp.dca
        return {"engine": "dca", "max_safety_orders": d.max_safety_orders,
                "price_deviation_pct": round(d.price_deviation_pct, 4), "step_scale": round(d.step_scale, 4),
                "volume_scale": round(d.volume_scale, 4), "take_profit_pct": round(d.take_profit_pct, 4),
                "base_order_quote": d.base_order_quote, "safety_order_quote": d.safety_order_quote}
    return {"engine": "none"}
