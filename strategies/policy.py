"""The regime policy: a table regime id -> strategy parameters, and its checks against capital and rules.

`Policy` is what the tuner produces and the live runner loads: for each regime id (0..n-1, the
model's classes) an engine (grid, dca or none = pause entries) with its settings, plus the hysteresis.
`Policy.table()` is the float64 parameter table the engine takes (one row per regime, `P_*` columns).
A static strategy is a one-regime policy (`Policy.static`).
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.config import DcaConfig, GridConfig, StrategyConfig
from core.errors import ConfigError
from core.market_rules import MarketRules
from strategies.atr import MAX_HALF_WIDTH
from strategies.layout import (
    ENGINE_DCA,
    ENGINE_GRID,
    ENGINE_NONE,
    N_PARAMS,
    P_D_BASE_QUOTE,
    P_D_COOLDOWN,
    P_D_DEV_PCT,
    P_D_MAX_SO,
    P_D_SL_PCT,
    P_D_SO_QUOTE,
    P_D_STEP_SCALE,
    P_D_TP_PCT,
    P_D_TRAIL_PCT,
    P_D_VOL_SCALE,
    P_ENGINE,
    P_G_ATR_BARS,
    P_G_ATR_MULT,
    P_G_FIXED,
    P_G_GEOMETRIC,
    P_G_LEVELS,
    P_G_LOWER,
    P_G_ORDER_QUOTE,
    P_G_STEP_PCT,
    P_G_STOP_LOSS,
    P_G_TAKE_PROFIT,
    P_G_TRAILING_UP,
    P_G_UPPER,
)
from strategies.risk import RunSettings

_ENGINES = {"none": ENGINE_NONE, "grid": ENGINE_GRID, "dca": ENGINE_DCA}


class RegimeParams(BaseModel):
    """One regime's strategy: which engine trades and its settings ("none" pauses new entries)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    engine: Literal["grid", "dca", "none"] = "grid"
    grid: GridConfig = GridConfig()
    dca: DcaConfig = DcaConfig()

    def row(self) -> np.ndarray:
        r = np.zeros(N_PARAMS, dtype=np.float64)
        r[P_ENGINE] = _ENGINES[self.engine]
        g, d = self.grid, self.dca
        r[P_G_GEOMETRIC] = 1.0 if g.spacing == "geometric" else 0.0
        r[P_G_STEP_PCT] = g.grid_step_pct
        r[P_G_LEVELS] = g.levels
        r[P_G_FIXED] = 1.0 if g.range_mode == "fixed" else 0.0
        r[P_G_LOWER] = g.lower_price or 0.0
        r[P_G_UPPER] = g.upper_price or 0.0
        r[P_G_ORDER_QUOTE] = g.order_size_quote
        r[P_G_TRAILING_UP] = 1.0 if g.trailing_up else 0.0
        r[P_G_STOP_LOSS] = g.stop_loss_price or 0.0
        r[P_G_TAKE_PROFIT] = g.take_profit_price or 0.0
        r[P_G_ATR_MULT] = g.range_atr_mult if g.range_mode == "dynamic" else 0.0
        r[P_G_ATR_BARS] = g.atr_bars
        r[P_D_BASE_QUOTE] = d.base_order_quote
        r[P_D_SO_QUOTE] = d.safety_order_quote
        r[P_D_MAX_SO] = d.max_safety_orders
        r[P_D_DEV_PCT] = d.price_deviation_pct
        r[P_D_STEP_SCALE] = d.step_scale
        r[P_D_VOL_SCALE] = d.volume_scale
        r[P_D_TP_PCT] = d.take_profit_pct
        r[P_D_TRAIL_PCT] = d.trailing_take_profit_pct or 0.0
        r[P_D_SL_PCT] = d.stop_loss_pct or 0.0
        r[P_D_COOLDOWN] = d.cooldown_bars
        return r

    def entry_orders_quote(self) -> list[float]:
        """Quote sizes of every entry order the engine may have at once (grid buys; DCA base + safeties)."""
        if self.engine == "grid":
            return [self.grid.order_size_quote] * (self.grid.levels - 1)
        if self.engine == "dca":
            d = self.dca
            return [d.base_order_quote] + [d.safety_order_quote * d.volume_scale**m for m in range(d.max_safety_orders)]
        return []


class Policy(BaseModel):
    """Regime id -> parameters, plus the hysteresis the switch obeys."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    regimes: dict[int, RegimeParams] = Field(min_length=1)
    min_dwell_bars: int = Field(default=3, ge=0, le=10_000)
    min_regime_probability: float = Field(default=0.5, ge=0, le=1)

    @classmethod
    def single(cls, params: RegimeParams) -> Policy:
        """One regime (id 0), no switching: a static strategy."""
        return cls(regimes={0: params}, min_dwell_bars=0, min_regime_probability=0.0)

    @classmethod
    def static(cls, strategy: StrategyConfig, engine: str | None = None) -> Policy:
        """The config's strategy (or its grid / dca section, by `engine`) as a one-regime policy."""
        return cls.single(RegimeParams(engine=engine or strategy.engine, grid=strategy.grid, dca=strategy.dca))

    def table(self) -> np.ndarray:
        ids = sorted(self.regimes)
        if ids != list(range(len(ids))):
            raise ConfigError(f"policy regimes must be numbered 0..{len(ids) - 1}, got {ids}",
                              "number the regimes from 0 without gaps (the model's class ids)")
        return np.ascontiguousarray(np.stack([self.regimes[i].row() for i in ids]))

    def settings_for(self, base: RunSettings) -> RunSettings:
        """`base` with this policy's hysteresis."""
        return RunSettings(**{**base.__dict__, "min_dwell_bars": self.min_dwell_bars,
                              "min_regime_probability": self.min_regime_probability})


def param_table(table: np.ndarray) -> np.ndarray:
    """A parameter table as the engine takes it (float64, contiguous, N_PARAMS columns). A table saved
    by an older version has fewer columns: the ones added since are 0, which keeps their feature off."""
    t = np.asarray(table, dtype=np.float64)
    if t.ndim != 2 or t.shape[0] < 1 or t.shape[1] > N_PARAMS:
        raise ConfigError(f"a parameter table must have one row per regime and at most {N_PARAMS} columns, "
                          f"got shape {t.shape}", "pass Policy.table() of this aiotrade version")
    if t.shape[1] < N_PARAMS:
        t = np.hstack([t, np.zeros((t.shape[0], N_PARAMS - t.shape[1]))])
    return np.ascontiguousarray(t)


def load_policy_file(path: str | Path) -> Policy:
    """A policy from a TOML file: `min_dwell_bars`, `min_regime_probability`, and one table per
    regime (`[regimes.0]` engine = "grid", `[regimes.0.grid]` ..., `[regimes.1]` ...)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: policy file not found", "pass a TOML policy file (see strategies/README.md)")
    try:
        raw: dict[str, Any] = tomllib.loads(p.read_text(encoding="utf-8"))
        raw["regimes"] = {int(k): v for k, v in raw.get("regimes", {}).items()}
        return Policy.model_validate(raw)
    except (tomllib.TOMLDecodeError, ValueError, ValidationError) as e:
        lines = [f"{p}: {'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in e.errors()] \
            if isinstance(e, ValidationError) else [f"{p}: {e}"]
        raise ConfigError("\n".join(lines), "fix the policy file (see strategies/README.md)") from None


def check_funds(policy: Policy, rules: MarketRules, settings: RunSettings, ref_price: float,
                capital_share: float = 1.0, where: str = "strategy") -> None:
    """ConfigError when an order is below the venue's minimum or the pair's capital cannot carry the
    chosen grid / DCA at full depth; the message names the parameter and the minimum needed."""
    deployable = settings.capital_quote * settings.max_exposure_pct / 100.0
    for rid, rp in sorted(policy.regimes.items()):
        label = where if len(policy.regimes) == 1 else f"{where} regime {rid}"
        sizes = rp.entry_orders_quote()
        if not sizes:
            continue
        price = ref_price
        if rp.engine == "grid" and rp.grid.range_mode == "fixed" and rp.grid.upper_price:
            price = max(price, rp.grid.upper_price)
        floor = rules.min_entry_quote(price)
        if min(sizes) < floor:
            name = ("grid.order_size_quote" if rp.engine == "grid"
                    else "dca.base_order_quote" if sizes[0] < floor else "dca.safety_order_quote")
            at_least = math.ceil(floor * 100) / 100
            raise ConfigError(
                f"{label}.{name}: an order of {min(sizes):.4g} {_quote(rules)} is below the smallest order "
                f"{rules.symbol} accepts once fees and lot rounding are taken ({floor:.4g} at price {price:.6g})",
                f"raise {label}.{name} to at least {at_least:.2f}",
            )
        if rp.engine == "grid":
            _check_grid_step(rp.grid, rules, ref_price, label)
        need = sum(sizes)
        if need > deployable * (1 + 1e-12):
            minimum = need / (settings.max_exposure_pct / 100.0) / capital_share
            what = (f"{rp.grid.levels - 1} buy levels x order_size_quote {rp.grid.order_size_quote:g}"
                    if rp.engine == "grid" else
                    f"base order + {rp.dca.max_safety_orders} safety orders (volume_scale {rp.dca.volume_scale:g})")
            raise ConfigError(
                f"risk.capital_quote is too small for {label} ({rp.engine}) on {rules.symbol}: {what} need "
                f"{need:.2f} {_quote(rules)}, but the pair may deploy {deployable:.2f} "
                f"({settings.capital_quote:.2f} allocated x max_exposure_pct {settings.max_exposure_pct:g}%); "
                f"minimum capital_quote: {minimum:.2f}",
                f"raise risk.capital_quote to at least {minimum:.2f}, or use fewer levels / safety orders or "
                "smaller orders",
            )


def _check_grid_step(g: GridConfig, rules: MarketRules, ref_price: float, label: str) -> None:
    """Levels closer than two ticks would round onto one another."""
    if g.range_mode == "dynamic" and g.range_atr_mult > 0:
        # The engine widens a narrow ATR range to 2 x (levels - 1) ticks each side, and caps it at
        # MAX_HALF_WIDTH x the close: both cannot hold when the levels do not fit in that cap.
        need = 2 * rules.tick_size * (g.levels - 1)
        if need > MAX_HALF_WIDTH * ref_price:
            raise ConfigError(
                f"{label}.grid.levels: {g.levels} levels two ticks ({rules.tick_size:g}) apart need a range of "
                f"+/-{need:.6g}, more than the ATR range may span at price {ref_price:.6g} "
                f"(+/-{MAX_HALF_WIDTH:g} x price) on {rules.symbol}",
                "use fewer levels",
            )
        return
    if g.range_mode == "fixed" and g.lower_price and g.upper_price:
        step = ((g.upper_price / g.lower_price) ** (1 / (g.levels - 1)) - 1) * g.lower_price \
            if g.spacing == "geometric" else (g.upper_price - g.lower_price) / (g.levels - 1)
        name = "grid.levels (range lower_price..upper_price)"
    else:
        step = ref_price * g.grid_step_pct / 100.0 / (1 + g.grid_step_pct / 100.0) ** ((g.levels - 1) / 2)
        name = "grid.grid_step_pct"
    if step < 2 * rules.tick_size:
        raise ConfigError(
            f"{label}.{name}: grid levels {step:.6g} apart are closer than two ticks ({rules.tick_size:g}) "
            f"of {rules.symbol}: they would round onto the same price",
            "use fewer levels or a wider step",
        )


def _quote(rules: MarketRules) -> str:
    return rules.symbol.partition("/")[2] or "quote"
