"""What the runner trades with: a policy (regime -> parameters), and how it recognises the regime.

`ActivePolicy` is the runner's view of a loaded policy: its version, the `strategies.policy.Policy`
table the engine takes, the feature spec and timeframes it needs, and `predict(window)` giving the
raw regime id and its probability for the newest bar of a candle window. Hysteresis is not applied
here: the engine applies it at the close (`strategies.regime.hysteresis`), as in the backtest.

- `StaticPolicy`: the config's strategy as a one-regime policy (no model): `aiotrade live --static`.
- `BundlePolicy`: a registered MLflow policy bundle, loaded through `models` (see `live.watcher`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from core.config import Config
from core.errors import ModelError
from strategies.policy import Policy


class ActivePolicy(Protocol):
    version: str  # shown in status and logs; changes when the watcher swaps policies
    policy: Policy
    base_timeframe: str
    pairs: tuple[str, ...]  # empty: any pair
    exchange: str | None  # None: any exchange
    regime_names: dict[int, str]

    @property
    def warmup_bars(self) -> int:
        """Base candles the newest feature row needs behind it (1 without a model)."""
        ...

    def predict(self, pair: str, window: pd.DataFrame | tuple[np.ndarray, np.ndarray]) -> tuple[int, float]:
        """(raw regime id, probability) for the newest bar of `window`: base candles, newest last, as a
        frame or as (open times, (n, 5) ohlcv) arrays (what the trader passes, `CandleWindow.arrays`)."""
        ...


@dataclass
class StaticPolicy:
    policy: Policy
    base_timeframe: str
    version: str = "static"
    pairs: tuple[str, ...] = ()
    exchange: str | None = None
    regime_names: dict[int, str] = field(default_factory=lambda: {0: "static"})

    @classmethod
    def from_config(cls, cfg: Config) -> StaticPolicy:
        return cls(Policy.static(cfg.strategy), cfg.market.base_timeframe,
                   version=f"static:{cfg.strategy.engine}:{cfg.config_hash()}")

    # No model: the trader need not build a candle frame for predict().
    needs_candles = False

    @property
    def warmup_bars(self) -> int:
        return 1

    def predict(self, pair: str, window: pd.DataFrame | tuple[np.ndarray, np.ndarray] | None) -> tuple[int, float]:
        return 0, 1.0


def check_compatible(active: ActivePolicy, cfg: Config) -> None:
    """ModelError when a policy cannot trade this config: other pairs, base timeframe or exchange."""
    problems = []
    if active.base_timeframe != cfg.market.base_timeframe:
        problems.append(f"it was trained on base timeframe {active.base_timeframe}, the config trades "
                        f"{cfg.market.base_timeframe}")
    missing = [p for p in cfg.market.pairs if active.pairs and p not in active.pairs]
    if missing:
        problems.append(f"it was trained for {', '.join(active.pairs)}, not for {', '.join(missing)}")
    if active.exchange and active.exchange != cfg.exchange.name:
        problems.append(f"it was trained on {active.exchange} candles, the config trades on {cfg.exchange.name}")
    if problems:
        raise ModelError(
            f"policy {active.version} does not fit this config: " + "; ".join(problems),
            "train a policy for these pairs/timeframes with `aiotrade train`, or change market.pairs / "
            "market.base_timeframe / exchange.name to what the policy was trained for",
        )


def describe_params(active: ActivePolicy, regime: int) -> dict[str, Any]:
    """The active regime's parameters as plain data (for the state DB, status and logs)."""
    if regime < 0 or regime not in active.policy.regimes:
        return {"engine": "none", "why": "no regime active yet"}
    rp = active.policy.regimes[regime]
    out: dict[str, Any] = {"regime": active.regime_names.get(regime, str(regime)), "engine": rp.engine}
    if rp.engine == "grid":
        out.update(rp.grid.model_dump(exclude_none=True))
    elif rp.engine == "dca":
        out.update(rp.dca.model_dump(exclude_none=True))
    return out


def no_champion(model_name: str, alias: str) -> ModelError:
    return ModelError(
        f"no policy registered as models:/{model_name}@{alias}",
        "run `aiotrade train` first (it registers a policy and sets the alias), or trade the config's static "
        "strategy with `aiotrade live --static`",
    )
