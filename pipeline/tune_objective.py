"""What a tuning trial is scored on: walk-forward windows of the out-of-fold regime series, and the score.

The data: for every pair, its base candles over the span where the regime model has out-of-fold
predictions (the regime and its probability at every bar, -1 where none), cut by time into
`tuning.folds` consecutive tuning windows and, after them, the held-back window (`tuning.holdout_pct`
of the span). Studies see only the tuning windows; the held-back window is scored once, at the end,
for the adaptive policy and every baseline alike (see `pipeline.tune_eval`).

The score of one parameter set on one window (all pairs, each on its own capital slice): the mean
over the pairs of `tuning.metric` (Calmar, Sortino, Sharpe or total return), clipped to +-METRIC_CAP
so one lucky short window cannot outvote the others; a window without trades is flat and scores 0.
The trial's objective is the mean of its window scores (reported window by window, as a running
mean, to the median pruner). Infeasible sets never win:
- a pair's max drawdown above `tuning.max_drawdown_pct` in any window (it blows up): that window
  scores below PENALTY (-100), graded by the excess;
- fewer than `tuning.min_trades` fills over all pairs and windows together (it barely trades):
  the objective is PENALTY + up to 50, graded by the fills, so the sampler still learns the way out.
  Counted over all windows, not per window, because a regime may be absent from one window.
A regime that is paused ("none") is flat by choice and scores 0: it wins only where every trading set
loses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from core.config import TuningConfig
from core.errors import DataError
from core.market_rules import MarketRules
from strategies.regime import active_regimes
from strategies.risk import RunSettings
from strategies.simulator import Bars, simulate_batch

METRIC_CAP = 50.0
PENALTY = -100.0


@dataclass(frozen=True)
class PairSeries:
    """One pair's candles over the out-of-fold span, with the model's raw regime and probability per bar."""

    pair: str
    bars: Bars
    regimes: np.ndarray  # int64, -1 = no prediction
    probs: np.ndarray  # float64, probability of that regime

    def __post_init__(self) -> None:
        n = len(self.bars)
        if self.regimes.shape != (n,) or self.probs.shape != (n,):
            raise DataError(f"{self.pair}: {n} candles but {self.regimes.shape[0]} regimes and "
                            f"{self.probs.shape[0]} probabilities", "give one prediction per candle")


@dataclass(frozen=True)
class Window:
    name: str
    start_ms: int  # first bar's ts, inclusive
    stop_ms: int  # exclusive


@dataclass(frozen=True)
class Slice:
    bars: Bars
    active: np.ndarray  # the regime the hysteresis has armed at each close (-1 before the first)


@dataclass
class TuningData:
    """Everything a trial is scored on: pairs, their rules and capital slice, the windows.

    The hysteresis (`settings.min_dwell_bars`, `min_regime_probability`) runs once over each pair's
    whole out-of-fold span (`active`), and windows are cut from that armed-regime series: a window
    starts with the regime that was armed at its first bar, as the live runner would have it, not
    from scratch. The simulator then follows the armed series exactly (`sim_settings`: dwell 0,
    probability 0, so each change of the series switches at that close, as the hysteresis did).
    """

    pairs: list[PairSeries]
    rules: dict[str, MarketRules]
    settings: RunSettings  # per pair (capital slice, risk, hysteresis)
    regime_names: list[str]
    folds: list[Window]
    holdout: Window
    _cache: dict[tuple[str, str], Slice | None] = field(default_factory=dict, repr=False)
    _active: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def sim_settings(self) -> RunSettings:
        return replace(self.settings, min_dwell_bars=0, min_regime_probability=0.0)

    def active(self, pair: PairSeries) -> np.ndarray:
        if pair.pair not in self._active:
            self._active[pair.pair] = active_regimes(pair.regimes, pair.probs, self.settings.min_dwell_bars,
                                                     self.settings.min_regime_probability)
        return self._active[pair.pair]

    def slice(self, pair: PairSeries, window: Window) -> Slice | None:
        """The pair's bars inside the window (None when fewer than 2 bars fall in it)."""
        key = (pair.pair, window.name)
        if key not in self._cache:
            ts = pair.bars.ts
            a, b = np.searchsorted(ts, window.start_ms), np.searchsorted(ts, window.stop_ms)
            if b - a < 2:
                self._cache[key] = None
            else:
                s = slice(int(a), int(b))
                bars = Bars(ts[s], pair.bars.open[s], pair.bars.high[s], pair.bars.low[s], pair.bars.close[s],
                            pair.bars.bar_ms)
                self._cache[key] = Slice(bars, self.active(pair)[s])
        return self._cache[key]

    @property
    def n_regimes(self) -> int:
        return len(self.regime_names)


def make_windows(pairs: list[PairSeries], n_folds: int, holdout_pct: float) -> tuple[list[Window], Window]:
    """`n_folds` equal tuning windows, then the held-back window, over the pairs' common time span."""
    start = min(int(p.bars.ts[0]) for p in pairs)
    stop = max(int(p.bars.ts[-1]) for p in pairs) + max(p.bars.bar_ms for p in pairs)
    cut = stop - int((stop - start) * holdout_pct / 100.0)
    edges = np.linspace(start, cut, n_folds + 1).astype(np.int64)
    folds = [Window(f"fold{i + 1}", int(edges[i]), int(edges[i + 1])) for i in range(n_folds)]
    return folds, Window("holdout", cut, stop)


def metric_value(m: dict[str, float], metric: str) -> float:
    """The configured metric, finite: undefined ratios (no drawdown, flat equity) follow the return's sign."""
    v = float(m[metric])
    if math.isnan(v):
        v = METRIC_CAP if m["total_return"] > 0 else 0.0
    return float(np.clip(v, -METRIC_CAP, METRIC_CAP))


def window_score(per_pair: list[dict[str, float]], cfg: TuningConfig) -> float:
    """One window's score over the pairs: the metric, or the drawdown penalty (see the module docstring)."""
    worst_dd = max(float(m["max_drawdown"]) for m in per_pair)
    limit = cfg.max_drawdown_pct / 100.0
    if worst_dd > limit:
        return PENALTY - 100.0 * (worst_dd - limit)
    return float(np.mean([metric_value(m, cfg.metric) for m in per_pair]))


def window_fills(per_pair: list[dict[str, float]]) -> int:
    return sum(int(m["fills"]) for m in per_pair)


def final_score(window_scores: list[float], fills: int, cfg: TuningConfig) -> float:
    """The trial's objective: the mean window score, unless the set barely traded over all windows."""
    if fills < cfg.min_trades:
        return PENALTY + 50.0 * fills / max(1, cfg.min_trades)
    return float(np.mean(window_scores))


def window_metrics(data: TuningData, window: Window, tables: list[np.ndarray], with_regimes: bool,
                   n_jobs: int) -> list[list[dict[str, float]]]:
    """Metrics of every parameter table on every pair in the window: result[table][pair]."""
    out: list[list[dict[str, float]]] = [[] for _ in tables]
    for pair in data.pairs:
        sl = data.slice(pair, window)
        if sl is None:
            continue
        regimes = sl.active if with_regimes else None
        ms = simulate_batch(sl.bars, tables, data.rules[pair.pair], data.sim_settings, regimes, None, n_jobs=n_jobs)
        for i, m in enumerate(ms):
            out[i].append(m)
    return out
