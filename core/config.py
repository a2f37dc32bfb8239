"""Typed, frozen, validated configuration: one TOML file, one pydantic model per section.

Nothing reads raw dict keys after `load_config`. Every section forbids unknown keys, and every
validation error is turned into one line naming the file, the key path, the bad value and what is
allowed ("aiotrade.toml: risk.max_drawdown_pct = 150: must be > 0 and <= 100"). API keys never live
here: see `core.secrets`.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import annotated_types as at
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.errors import ConfigError
from core.timeframes import SUPPORTED_TIMEFRAMES, is_multiple, timeframe_ms

DEFAULT_CONFIG_FILE = "aiotrade.toml"
DEFAULT_TRACKING_URI = "sqlite:///mlruns/mlflow.db"

Pct = Annotated[float, Field(gt=0, le=100)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExchangeConfig(Section):
    name: Literal["binance", "bitget"] = "binance"
    # paper: fills simulated locally against market data (the default); live: real orders, which
    # also need `aiotrade live --live` and API keys in the environment or a 0600 secrets file.
    mode: Literal["paper", "live"] = "paper"
    secrets_file: str | None = None
    # Point the REST client at another host, e.g. the emulator: "http://127.0.0.1:8765".
    base_url: str | None = None
    # Fee overrides in percent; None takes the venue's default (exchange rules module).
    maker_fee_pct: Annotated[float, Field(ge=0, le=5)] | None = None
    taker_fee_pct: Annotated[float, Field(ge=0, le=5)] | None = None
    timeout_s: Annotated[float, Field(gt=0, le=120)] = 10.0


class MarketConfig(Section):
    pairs: Annotated[list[str], Field(min_length=1)] = ["BTC/USDT", "ETH/USDT"]
    base_timeframe: str = "5m"
    feature_timeframes: list[str] = ["15m", "1h", "4h"]

    @field_validator("pairs")
    @classmethod
    def _pairs_look_like_spot(cls, pairs: list[str]) -> list[str]:
        for p in pairs:
            base, sep, quote = p.partition("/")
            if not sep or not base or not quote or ":" in p or p != p.upper():
                raise ValueError(f"pair {p!r} must look like 'BTC/USDT' (spot, upper case, no ':' suffix)")
        if len(set(pairs)) != len(pairs):
            raise ValueError("pairs must not repeat")
        return pairs

    @field_validator("base_timeframe")
    @classmethod
    def _known_base(cls, tf: str) -> str:
        if tf not in SUPPORTED_TIMEFRAMES:
            raise ValueError(f"must be one of {', '.join(SUPPORTED_TIMEFRAMES)}")
        return tf

    @model_validator(mode="after")
    def _feature_tfs_above_base(self) -> MarketConfig:
        for tf in self.feature_timeframes:
            if tf not in SUPPORTED_TIMEFRAMES:
                raise ValueError(f"feature timeframe {tf!r} must be one of {', '.join(SUPPORTED_TIMEFRAMES)}")
            if not is_multiple(tf, self.base_timeframe) or tf == self.base_timeframe:
                raise ValueError(
                    f"feature timeframe {tf!r} must be a whole multiple of base_timeframe "
                    f"{self.base_timeframe!r} and larger than it"
                )
        return self

    @property
    def timeframes(self) -> list[str]:
        """Base first, then the feature timeframes by length."""
        return [self.base_timeframe, *sorted(self.feature_timeframes, key=timeframe_ms)]


class DataConfig(Section):
    # The Parquet candle store: <store_dir>/<exchange>/<BASE_QUOTE>/<timeframe>.parquet
    store_dir: str = "user_data/candles"
    # Off-grid candle stamps (e.g. Binance's 2018-02-09 HH:28 candles): floor them with a warning,
    # or reject the file.
    off_grid: Literal["floor", "reject"] = "floor"


class MlflowConfig(Section):
    # MLFLOW_TRACKING_URI in the environment overrides this.
    tracking_uri: str = DEFAULT_TRACKING_URI
    experiment: str = "aiotrade"
    model_name: str = "aiotrade-policy"
    alias: str = "champion"


class ModelConfig(Section):
    # Regime labels look `horizon_bars` base bars ahead (training only).
    horizon_bars: Annotated[int, Field(ge=2, le=2000)] = 24
    cv_folds: Annotated[int, Field(ge=2, le=20)] = 4
    # Bars dropped between train and test on each side; at least horizon_bars (enforced).
    embargo_bars: Annotated[int, Field(ge=0, le=100_000)] | None = None
    n_estimators: Annotated[int, Field(ge=10, le=10_000)] = 400
    learning_rate: Annotated[float, Field(gt=0, le=1)] = 0.05
    num_leaves: Annotated[int, Field(ge=2, le=1024)] = 31
    # Histogram bins per feature (LightGBM's default is 255); fewer train faster (models/classifier.py).
    max_bin: Annotated[int, Field(ge=4, le=1023)] = 63
    # Rounds without improvement of the validation balanced error before LightGBM stops. On BTC/ETH
    # 5m 2023, 30 stopped one fold after 8 rounds where 100 went on to 162 (models/README.md).
    early_stopping_rounds: Annotated[int, Field(ge=1, le=1000)] = 100
    random_state: int = 42
    # Cores for training: the CV fold models and the final model are fitted side by side, one
    # LightGBM thread each (a multi-threaded fit on a busy 2-core box was 10x slower).
    n_jobs: Annotated[int, Field(ge=1, le=64)] = 2


class GridConfig(Section):
    spacing: Literal["arithmetic", "geometric"] = "geometric"
    grid_step_pct: Annotated[float, Field(gt=0, le=50)] = 0.5
    levels: Annotated[int, Field(ge=2, le=500)] = 20
    # dynamic: range centred on the price when the grid arms; fixed: lower_price..upper_price.
    range_mode: Literal["dynamic", "fixed"] = "dynamic"
    lower_price: Annotated[float, Field(gt=0)] | None = None
    upper_price: Annotated[float, Field(gt=0)] | None = None
    order_size_quote: Annotated[float, Field(gt=0)] = 20.0
    trailing_up: bool = True
    stop_loss_price: Annotated[float, Field(gt=0)] | None = None
    take_profit_price: Annotated[float, Field(gt=0)] | None = None
    # Dynamic range sized by volatility: close -/+ range_atr_mult x ATR(atr_bars) when the grid arms
    # (instead of grid_step_pct); 0 = off. ATR: mean true range of the last atr_bars closed bars.
    range_atr_mult: Annotated[float, Field(ge=0, le=100)] = 0.0
    atr_bars: Annotated[int, Field(ge=1, le=500)] = 14

    @model_validator(mode="after")
    def _fixed_range_is_ordered(self) -> GridConfig:
        if self.range_mode == "fixed":
            if self.lower_price is None or self.upper_price is None:
                raise ValueError("range_mode = 'fixed' needs lower_price and upper_price")
            if self.lower_price >= self.upper_price:
                raise ValueError(
                    f"lower_price {self.lower_price} must be below upper_price {self.upper_price}"
                )
            if self.range_atr_mult > 0:
                raise ValueError(
                    f"range_atr_mult {self.range_atr_mult} sizes a dynamic range: use range_mode = 'dynamic' "
                    "or set range_atr_mult = 0 for a fixed range"
                )
        elif self.range_atr_mult > 0:
            pass  # the ATR sizes the range; grid_step_pct is not used
        elif self.spacing == "arithmetic" and self.grid_step_pct * (self.levels - 1) / 2 >= 100:
            # A dynamic arithmetic grid is centred on the price: its lowest level would be <= 0.
            raise ValueError(
                f"grid_step_pct {self.grid_step_pct} x (levels {self.levels} - 1) / 2 must stay below 100 "
                "for an arithmetic dynamic grid (its lowest level would be at or below 0)"
            )
        if self.stop_loss_price is not None and self.take_profit_price is not None:
            if self.stop_loss_price >= self.take_profit_price:
                raise ValueError(
                    f"stop_loss_price {self.stop_loss_price} must be below take_profit_price {self.take_profit_price}"
                )
        return self


class DcaConfig(Section):
    base_order_quote: Annotated[float, Field(gt=0)] = 20.0
    safety_order_quote: Annotated[float, Field(gt=0)] = 20.0
    # The averaging depth.
    max_safety_orders: Annotated[int, Field(ge=0, le=50)] = 5
    price_deviation_pct: Annotated[float, Field(gt=0, le=50)] = 1.0
    step_scale: Annotated[float, Field(gt=0, le=10)] = 1.2
    volume_scale: Annotated[float, Field(gt=0, le=10)] = 1.5
    take_profit_pct: Annotated[float, Field(gt=0, le=100)] = 1.0
    trailing_take_profit_pct: Annotated[float, Field(gt=0, le=50)] | None = None
    stop_loss_pct: Annotated[float, Field(gt=0, le=100)] | None = None
    cooldown_bars: Annotated[int, Field(ge=0, le=100_000)] = 0

    @model_validator(mode="after")
    def _safety_orders_above_zero(self) -> DcaConfig:
        # The last safety order sits price_deviation_pct x (1 + step_scale + ... ) below the entry.
        total = sum(self.price_deviation_pct * self.step_scale**m for m in range(self.max_safety_orders))
        if total >= 100:
            raise ValueError(
                f"price_deviation_pct {self.price_deviation_pct} with step_scale {self.step_scale} puts safety "
                f"order {self.max_safety_orders} {total:.1f}% below the entry (must stay below 100%): "
                "lower max_safety_orders, price_deviation_pct or step_scale"
            )
        return self


class StrategyConfig(Section):
    # The static strategy used when no policy is loaded (and as the baseline).
    engine: Literal["grid", "dca", "none"] = "grid"
    grid: GridConfig = GridConfig()
    dca: DcaConfig = DcaConfig()
    # Hysteresis against regime flapping: a new regime must hold this many bars and this
    # probability before the policy switches to it. Training stores both in the policy bundle (live
    # and backtests use the bundle's) and prints how often each regime is armed with them. 0.35:
    # with 4 classes under balanced weights a uniform guess is 0.25; on the sample's out-of-fold
    # predictions 0.35 is about the 25th percentile of the top class's probability, so near-uniform
    # guesses are ignored while every regime still arms about as often as it is predicted (0.5 armed
    # trend_down on 3% of the bars against 10% predicted, and `range` on 77%).
    min_dwell_bars: Annotated[int, Field(ge=0, le=10_000)] = 3
    min_regime_probability: Annotated[float, Field(ge=0, le=1)] = 0.35
    touch_fills: bool = False


class RiskConfig(Section):
    capital_quote: Annotated[float, Field(gt=0)] = 1000.0
    max_allocation_per_pair_pct: Pct = 50.0
    max_exposure_pct: Pct = 80.0
    max_drawdown_pct: Pct = 25.0
    daily_loss_limit_pct: Pct = 10.0
    sell_inventory_on_kill: bool = False
    max_orders_per_minute: Annotated[int, Field(ge=1, le=10_000)] = 60


class TuningConfig(Section):
    # Trials per study (one study per regime, plus the static grid and static DCA baselines).
    n_trials: Annotated[int, Field(ge=1, le=1_000_000)] = 200
    seed: int = 42
    # Cores: the studies run side by side in this many worker processes (pipeline/tune_procs.py);
    # `aiotrade tune --worker` uses them as backtest threads of its one process.
    n_jobs: Annotated[int, Field(ge=1, le=64)] = 2
    # Empty: a local journal file under mlruns/optuna/. Or an RDB URL (postgresql://...).
    storage: str | None = None
    metric: Literal["calmar", "sortino", "sharpe", "total_return"] = "calmar"
    # A parameter set with fewer fills (over all pairs and tuning windows) cannot win.
    min_trades: Annotated[int, Field(ge=0)] = 5
    # ... nor one whose drawdown exceeds this on any pair in any window.
    max_drawdown_pct: Pct = 30.0
    # Walk-forward: the out-of-fold span is cut into `folds` tuning windows, then the held-back window
    # (the newest holdout_pct of the span) on which every policy and baseline is scored once.
    folds: Annotated[int, Field(ge=1, le=20)] = 3
    holdout_pct: Annotated[float, Field(gt=0, lt=90)] = 25.0
    # A regime active on fewer bars of the tuning windows is not tuned: it pauses new entries.
    min_regime_bars: Annotated[int, Field(ge=1)] = 100
    # Retrain promotion gate: the challenger must not be worse than the champion by more than this
    # (in units of `metric`).
    promotion_margin: Annotated[float, Field(ge=0)] = 0.0


class LiveConfig(Section):
    state_db: str = "user_data/state.db"
    # Namespaces the bot's client order ids, so two bots can share one exchange account; orders
    # without this bot's prefix are never touched.
    bot_name: Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.-]+$")] = "aiotrade"
    json_logs: bool = False
    cancel_orders_on_exit: bool = False
    # Relative tolerances before an open order is replaced by the desired one.
    price_tolerance_pct: Annotated[float, Field(ge=0, le=5)] = 0.05
    amount_tolerance_pct: Annotated[float, Field(ge=0, le=50)] = 1.0
    # Seconds after a bar closes before its candle is fetched (exchanges publish it a moment later).
    candle_delay_s: Annotated[float, Field(ge=0, le=60)] = 2.0
    # Entries pause when no new closed candle arrived for this many bars (stale-data watchdog).
    stale_after_bars: Annotated[int, Field(ge=1, le=100)] = 2
    # Back-off for retryable exchange errors: first wait, doubled per attempt up to the cap.
    retry_initial_s: Annotated[float, Field(gt=0, le=60)] = 1.0
    retry_max_s: Annotated[float, Field(gt=0, le=3600)] = 60.0
    # How often the registry alias is checked for a new policy version.
    watch_interval_s: Annotated[float, Field(gt=0, le=86_400)] = 60.0
    # Open orders and trades are asked from the exchange at every bar whose candle could have filled
    # one of the bot's orders, and at least every this many bars otherwise (1: every bar; larger
    # values save requests but notice orders cancelled by hand later).
    full_sync_every_bars: Annotated[int, Field(ge=1, le=10_000)] = 1


class Config(Section):
    exchange: ExchangeConfig = ExchangeConfig()
    market: MarketConfig = MarketConfig()
    data: DataConfig = DataConfig()
    mlflow: MlflowConfig = MlflowConfig()
    model: ModelConfig = ModelConfig()
    strategy: StrategyConfig = StrategyConfig()
    risk: RiskConfig = RiskConfig()
    tuning: TuningConfig = TuningConfig()
    live: LiveConfig = LiveConfig()

    def config_hash(self) -> str:
        """Short, stable hash of the resolved settings; tags MLflow runs and Optuna studies."""
        canon = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canon.encode()).hexdigest()[:12]


def load_config(path: str | Path | None = None) -> Config:
    """Load and validate a TOML config; None means the embedded defaults (or ./aiotrade.toml if present)."""
    if path is None:
        if not Path(DEFAULT_CONFIG_FILE).exists():
            return Config()
        path = DEFAULT_CONFIG_FILE
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found", "run `aiotrade init` to write a starter file")
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p}: not valid TOML: {e}", "fix the syntax at the line and column given") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not a UTF-8 text file", "save the config as UTF-8 TOML") from None
    return config_from_dict(raw, source=str(p))


def config_from_dict(raw: dict[str, Any], source: str = "<config>") -> Config:
    try:
        return Config.model_validate(raw)
    except ValidationError as e:
        lines = [_describe(err, source) for err in e.errors()]
        raise ConfigError("\n".join(lines), "edit the config (see `aiotrade init` for every key with comments)") from None


def _describe(err: Any, source: str) -> str:
    loc = [str(x) for x in err["loc"]]
    key = ".".join(loc) if loc else "(top level)"
    value = err.get("input")
    if err["type"] == "missing":
        return f"{source}: {key}: required key is missing"
    if err["type"] == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        close = difflib.get_close_matches(loc[-1], allowed, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"{source}: {key}: unknown key{hint}; allowed here: {', '.join(allowed)}"
    rule = _constraint_text(loc) if err["type"] in _BOUND_ERRORS else None
    msg = f"must be {rule}" if rule else _soften(err["msg"])
    if isinstance(value, dict):
        return f"{source}: {key}: {msg}"
    return f"{source}: {key} = {_show(value)}: {msg}"


_BOUND_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}


def _show(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value) if not isinstance(value, list | tuple) else json.dumps(value, default=str)


def _soften(msg: str) -> str:
    msg = msg.removeprefix("Value error, ")
    msg = msg.replace("Input should be", "must be")
    return msg


def _field_at(loc: list[str]) -> Any:
    """The pydantic FieldInfo at a key path, or None (walks nested section models)."""
    model: Any = Config
    info = None
    for part in loc:
        if model is None or not hasattr(model, "model_fields") or part not in model.model_fields:
            return None
        info = model.model_fields[part]
        ann = info.annotation
        model = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
    return info


def _allowed_keys(loc: list[str]) -> list[str]:
    if not loc:
        return list(Config.model_fields)
    info = _field_at(loc)
    ann = getattr(info, "annotation", None)
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return list(ann.model_fields)
    return []


def _constraint_text(loc: list[str]) -> str | None:
    info = _field_at([p for p in loc if not p.isdigit()])
    if info is None:
        return None
    metadata = list(info.metadata)
    # Optional[Annotated[...]] keeps its bounds inside the union's first argument.
    for arg in getattr(info.annotation, "__args__", ()) or ():
        metadata.extend(getattr(arg, "__metadata__", ()))
    parts = []
    for m in metadata:
        for cls, sym, attr in ((at.Gt, ">", "gt"), (at.Ge, ">=", "ge"), (at.Lt, "<", "lt"), (at.Le, "<=", "le")):
            if isinstance(m, cls):
                parts.append(f"{sym} {getattr(m, attr)}")
    return " and ".join(parts) or None
