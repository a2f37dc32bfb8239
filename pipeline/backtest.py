"""`aiotrade backtest`: candles from the store -> the simulator, per pair, beside its baselines -> files.

Per pair the same candles run through:
- the strategy under test: a regime policy (`--policy`, with a regime per bar) or, without one, the
  config's static strategy (`strategy.engine` with its grid / dca section);
- the baselines: the config's static strategy (or, when that is what is tested, the other static
  engine) and buy-and-hold of the pair's whole capital slice.
Capital per pair, exposure, drawdown kill switch and daily loss limit come from `[risk]`; exchange
rules from `core.market_rules` (venue filters for known pairs, fee overrides from `[exchange]`).
A grid or DCA the capital cannot carry at full depth is refused before anything runs, with the
minimum capital in the message. A grid whose step is below the round-trip fees is only warned about
(logged and kept in `PairResult.warnings`; `aiotrade backtest` prints them under its tables and keeps
its log handler off these records, so each shows once): every round trip loses money, but a user may
want to study exactly that.

Hook for registered policies: `resolve_policy(spec)` turns `--policy` into a Policy and a regime
source; a TOML file works today, `models:/NAME@ALIAS` is for the registry bundle to plug in.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from core.config import Config
from core.errors import ConfigError, DataError
from core.market_rules import MarketRules, default_rules
from core.store import CandleStore, pair_dir
from strategies.grid_profit import losing_grids, typical_atr_frac
from strategies.metrics import buy_and_hold
from strategies.policy import Policy, check_funds, load_policy_file
from strategies.risk import RunSettings
from strategies.simulator import Bars, simulate

log = logging.getLogger(__name__)

# (pair, candles) -> (raw regime id per bar, probability per bar or None)
RegimeSource = Callable[[str, pd.DataFrame], tuple[np.ndarray, np.ndarray | None]]


@dataclass
class Run:
    label: str
    metrics: dict[str, float]
    equity: np.ndarray
    fills: pd.DataFrame | None = None
    active_regime: np.ndarray | None = None


@dataclass
class PairResult:
    pair: str
    candles: pd.DataFrame
    rules: MarketRules
    settings: RunSettings
    runs: list[Run] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # e.g. a grid that loses money on every round trip


@dataclass(frozen=True)
class BacktestRequest:
    pairs: list[str]
    exchange: str
    timeframe: str
    start_ms: int | None = None
    end_ms: int | None = None
    policy: Policy | None = None
    policy_label: str = "policy"
    regimes: RegimeSource | None = None
    engine: str | None = None  # overrides strategy.engine for the static strategy


def parse_time_ms(text: str, option: str) -> int:
    """ISO date or datetime (naive = UTC) or epoch ms."""
    raw = text.strip()
    if raw.isdigit():
        return int(raw)
    try:
        dt = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{option} {text!r} is not a date", "write it as 2024-01-31 or 2024-01-31T12:00Z") from None
    return int((dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp() * 1000)


def resolve_policy(spec: str) -> tuple[Policy, str]:
    """`--policy` -> (Policy, label). The registry bundle hooks in here (models:/NAME@ALIAS)."""
    if spec.startswith("models:/"):
        from pipeline.policy_backtest import bundle_policy

        return bundle_policy(spec)
    return load_policy_file(spec), Path(spec).stem


def regimes_from_file(path: str | Path) -> RegimeSource:
    """A regime per bar from Parquet or CSV with columns ts (ms), regime[, prob]; bars without one get -1."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"--regimes {p}: file not found", "write ts, regime[, prob] per bar (Parquet or CSV)")
    table = pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_csv(p)
    missing = {"ts", "regime"} - set(table.columns)
    if missing:
        raise ConfigError(f"--regimes {p}: missing column(s) {', '.join(sorted(missing))}",
                          "the file needs ts (candle open time, ms) and regime (int), optionally prob")

    def source(pair: str, candles: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
        rows = table[table["pair"] == pair] if "pair" in table.columns else table
        merged = candles[["ts"]].merge(rows, on="ts", how="left")
        raw = merged["regime"].fillna(-1).to_numpy(dtype=np.int64)
        prob = merged["prob"].fillna(0.0).to_numpy(dtype=np.float64) if "prob" in merged.columns else None
        return raw, prob

    return source


def _rules(cfg: Config, pair: str, candles: pd.DataFrame) -> MarketRules:
    ex = cfg.exchange
    return default_rules(ex.name, pair, float(candles["close"].iloc[0]), ex.maker_fee_pct, ex.taker_fee_pct)


def _load(store: CandleStore, req: BacktestRequest, pair: str) -> pd.DataFrame:
    candles = store.load(req.exchange, pair, req.timeframe, req.start_ms, req.end_ms)
    if len(candles) < 2:
        span = f" in {fmt_ms(req.start_ms)}..{fmt_ms(req.end_ms)}" if req.start_ms or req.end_ms else ""
        raise DataError(f"{req.exchange} {pair} {req.timeframe}: {len(candles)} candles stored{span}",
                        "widen --from/--to or download the range (`aiotrade download`)")
    return candles


def _static_runs(cfg: Config, req: BacktestRequest) -> list[tuple[str, Policy]]:
    engine = req.engine or cfg.strategy.engine
    if req.policy is not None:
        return [(f"{engine} (static)", Policy.static(cfg.strategy, engine))] if engine != "none" else []
    runs = [(f"{engine} (config)", Policy.static(cfg.strategy, engine))]
    other = {"grid": "dca", "dca": "grid"}.get(engine)
    if other:
        runs.append((f"{other} (static)", Policy.static(cfg.strategy, other)))
    return runs


def run_backtest(cfg: Config, req: BacktestRequest, store_root: str | Path) -> list[PairResult]:
    store = CandleStore(store_root)
    loaded = [(pair, _load(store, req, pair)) for pair in req.pairs]
    base = RunSettings.from_config(cfg, n_pairs=len(req.pairs))
    share = base.capital_quote / cfg.risk.capital_quote
    results = []
    for pair, candles in loaded:
        rules = _rules(cfg, pair, candles)
        ref_price = float(candles["close"].iloc[0])
        plan = [(req.policy_label, req.policy)] if req.policy is not None else []
        plan += _static_runs(cfg, req)
        for label, pol in plan:  # refuse what the capital cannot carry, before anything runs
            check_funds(pol, rules, base, ref_price, share, where="strategy" if pol is not req.policy else label)
        bars = Bars.from_frame(candles)
        res = PairResult(pair, candles, rules, base, warnings=_grid_fee_warnings(plan, req, pair, candles, rules))
        for label, pol in plan:
            regimes = probs = None
            if pol is req.policy and req.regimes is not None:
                regimes, probs = req.regimes(pair, candles)
            sim = simulate(bars, pol, rules, base, regimes, probs)
            active = sim.active_regime if pol is req.policy else None
            res.runs.append(Run(label, sim.metrics, sim.equity, sim.fills, active))
        m, eq = buy_and_hold(bars.open, bars.close, base.capital_quote, rules.lot_size, rules.taker_fee, bars.bar_ms)
        res.runs.append(Run("buy & hold", m, eq))
        results.append(res)
    return results


def _grid_fee_warnings(plan: list[tuple[str, Policy]], req: BacktestRequest, pair: str, candles: pd.DataFrame,
                       rules: MarketRules) -> list[str]:
    """A warning per grid whose round trips lose money after fees (maker fee on both legs). An ATR-sized
    range is judged with the median ATR of these candles: its real width is known only when it arms."""
    hlc = [candles[k].to_numpy(dtype=np.float64) for k in ("high", "low", "close")]
    out = []
    for label, pol in plan:
        where = "strategy" if pol is not req.policy else label
        found = losing_grids(pol, rules.maker_fee, where, float(hlc[2][0]),
                             lambda n: typical_atr_frac(*hlc, n), rules.tick_size)
        out += [f"{pair}: {problem}; {fix}" for problem, fix in found]
    out = list(dict.fromkeys(out))  # the config's grid can be both the tested run and a baseline
    for text in out:
        log.warning(text)
    return out


def fmt_ms(ms: int | None) -> str:
    return "" if ms is None else datetime.fromtimestamp(int(ms) / 1000, UTC).strftime("%Y-%m-%d %H:%M")


def _slug(label: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in label).strip("_").replace("__", "_")


def write_outputs(results: list[PairResult], out_dir: str | Path) -> list[Path]:
    """Per pair: trades.csv (every fill of every run), equity.parquet (ts, close, one column per run,
    the active regime); and summary.json + summary.csv for all pairs and runs."""
    out = Path(out_dir)
    written: list[Path] = []
    summary = []
    for res in results:
        folder = out / pair_dir(res.pair)
        folder.mkdir(parents=True, exist_ok=True)
        trades = [run.fills.assign(run=run.label) for run in res.runs if run.fills is not None]
        if trades:
            path = folder / "trades.csv"
            pd.concat(trades, ignore_index=True).to_csv(path, index=False)
            written.append(path)
        curve = pd.DataFrame({"ts": res.candles["ts"].to_numpy(), "close": res.candles["close"].to_numpy()})
        for run in res.runs:
            curve[f"equity_{_slug(run.label)}"] = run.equity
            if run.active_regime is not None:
                curve["active_regime"] = run.active_regime
        path = folder / "equity.parquet"
        curve.to_parquet(path, index=False)
        written.append(path)
        summary += [{"pair": res.pair, "run": run.label, **_finite(run.metrics)} for run in res.runs]
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=_json_default) + "\n")
    pd.DataFrame(summary).to_csv(out / "summary.csv", index=False)
    return written + [out / "summary.json", out / "summary.csv"]


def _finite(m: dict[str, float]) -> dict[str, float | None]:
    """Undefined ratios (nan, inf) become null: JSON has no NaN."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in m.items()}


def _json_default(x: object) -> object:
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(f"not JSON serialisable: {type(x)}")
