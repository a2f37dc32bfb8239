"""The tuning core on the bundled sample with a simple, known regime series (no model needed here)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import optuna
import pytest

from core.config import Config, TuningConfig
from core.market_rules import default_rules
from core.store import CandleStore
from pipeline.tune import StudySpec, best_of, open_study, run_trials
from pipeline.tune_eval import ROW_NAMES, out_of_sample_table
from pipeline.tune_objective import PENALTY, PairSeries, TuningData, final_score, make_windows, window_score
from pipeline.tune_run import tune_policy
from pipeline.tune_space import SAFE_DEFAULT, Sizing, to_regime_params
from strategies.risk import RunSettings
from strategies.simulator import Bars

SAMPLE = Path(__file__).resolve().parents[2] / "pipeline" / "sample_data"
REGIMES = ["trend_up", "trend_down", "range", "high_volatility"]


def _cfg(**tuning) -> Config:
    base = {"n_trials": 12, "n_jobs": 2, "folds": 2, "holdout_pct": 25.0, "min_trades": 3}
    return Config.model_validate({"tuning": {**base, **tuning}})


def _data(cfg: Config, n_bars: int = 6000, never: int | None = 3) -> TuningData:
    """BTC and ETH 5m; regime = sign of the trailing day's return (0 up, 1 down, 2 flat); `never` unused."""
    store = CandleStore(SAMPLE)
    pairs, rules = [], {}
    for pair in ("BTC/USDT", "ETH/USDT"):
        df = store.load("binance", pair, "5m").iloc[:n_bars].reset_index(drop=True)
        c = df["close"].to_numpy()
        ret = np.r_[np.zeros(288), c[288:] / c[:-288] - 1]
        reg = np.where(ret > 0.01, 0, np.where(ret < -0.01, 1, 2)).astype(np.int64)
        reg[:288] = -1
        assert never is None or not np.any(reg == never)
        pairs.append(PairSeries(pair, Bars.from_frame(df), reg, np.full(len(df), 0.8)))
        rules[pair] = default_rules("binance", pair, float(c[0]))
    folds, holdout = make_windows(pairs, cfg.tuning.folds, cfg.tuning.holdout_pct)
    return TuningData(pairs, rules, RunSettings.from_config(cfg, 2), REGIMES, folds, holdout)


def test_windows_are_consecutive_and_the_holdout_comes_last() -> None:
    data = _data(_cfg(folds=3, holdout_pct=20.0))
    w = [*data.folds, data.holdout]
    assert [x.name for x in w] == ["fold1", "fold2", "fold3", "holdout"]
    assert all(a.stop_ms == b.start_ms for a, b in zip(w, w[1:], strict=False))
    span = w[-1].stop_ms - w[0].start_ms
    assert abs((data.holdout.stop_ms - data.holdout.start_ms) / span - 0.20) < 0.01
    assert data.slice(data.pairs[0], data.holdout).bars.ts[0] >= data.holdout.start_ms


def test_windows_carry_the_armed_regime_over_their_start() -> None:
    """The hysteresis runs over the whole span: a window starts with the regime armed before it."""
    data = _data(_cfg(folds=3))
    pair = data.pairs[0]
    for w in data.folds[1:]:
        sl = data.slice(pair, w)
        i = int(np.searchsorted(pair.bars.ts, w.start_ms))
        assert sl.active[0] == data.active(pair)[i] and sl.active[0] >= 0
    from strategies.regime import active_regimes

    expect = active_regimes(pair.regimes, pair.probs, data.settings.min_dwell_bars,
                            data.settings.min_regime_probability)
    assert np.array_equal(data.active(pair), expect)


def test_scores_rank_infeasible_sets_below_any_feasible_one() -> None:
    cfg = TuningConfig(min_trades=10, max_drawdown_pct=20.0, metric="calmar")
    ok = {"fills": 20, "max_drawdown": 0.05, "calmar": -40.0, "total_return": -0.1}
    blown = {"fills": 500, "max_drawdown": 0.5, "calmar": 2.0, "total_return": 0.3}
    assert window_score([ok], cfg) == -40.0
    assert window_score([blown], cfg) < PENALTY
    # Mean over the pairs, each clipped; undefined Calmar (no drawdown) follows the sign of the return.
    assert window_score([ok, {**ok, "calmar": 500.0}], cfg) == pytest.approx((-40.0 + 50.0) / 2)
    assert window_score([{**ok, "calmar": math.nan, "total_return": 0.02}], cfg) == 50.0
    # Too few fills over all windows: below any feasible mean, graded by how close it came.
    assert final_score([-40.0, -45.0], 10, cfg) == -42.5
    assert PENALTY <= final_score([30.0, 30.0], 4, cfg) < final_score([30.0], 8, cfg) < -50.0


def test_sizes_follow_the_capital_and_too_small_orders_are_refused() -> None:
    cfg = _cfg()
    sizing = Sizing(deployable_quote=400.0, min_order_quote=6.0)
    grid = to_regime_params({"engine": "grid", "grid_step_pct": 0.5, "grid_levels": 21, "grid_trailing_up": True},
                            sizing, cfg.strategy)
    assert grid is not None and grid.grid.levels == 21
    assert (grid.grid.levels - 1) * grid.grid.order_size_quote <= 400.0 * 0.95
    deep = {"engine": "dca", "dca_max_safety_orders": 12, "dca_price_deviation_pct": 1.0, "dca_step_scale": 1.2,
            "dca_volume_scale": 2.0, "dca_take_profit_pct": 1.0}
    assert to_regime_params(deep, sizing, cfg.strategy) is None  # 1 + 2 + ... + 2^11 units: each under 6 USDT
    assert to_regime_params({"engine": "none"}, sizing, cfg.strategy) == SAFE_DEFAULT
    # A ladder the DCA engine refuses (safety orders past 100% below the entry) is infeasible, not an error.
    wide = {**deep, "dca_max_safety_orders": 8, "dca_price_deviation_pct": 5.0, "dca_step_scale": 2.0,
            "dca_volume_scale": 1.0}
    assert to_regime_params(wide, Sizing(deployable_quote=1e6, min_order_quote=6.0), cfg.strategy) is None


def test_batched_trials_with_pruning_fill_the_budget_exactly(tmp_path: Path) -> None:
    cfg = _cfg(n_trials=20)
    data = _data(cfg)
    from pipeline.tune import Objective
    from pipeline.tuning_storage import open_storage

    url = f"journal:{tmp_path / 'j.log'}"
    spec = StudySpec("static-grid", engine="grid")
    study = open_study(open_storage(url), url, "s", spec, cfg, seed=1)
    objective = Objective(data, spec, cfg)
    run_trials(study, objective, n_trials=20, batch_size=8)
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == 20 and [t.number for t in trials] == list(range(20))
    assert {t.state for t in trials} <= {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED}
    # The config's own grid was enqueued as the first trial.
    assert trials[0].params["grid_levels"] == cfg.strategy.grid.levels
    for t in trials:  # running mean reported per window; a complete trial's value is the mean of all windows
        if t.state == optuna.trial.TrialState.COMPLETE:
            assert sorted(t.intermediate_values) == [0, 1]
            assert t.value == pytest.approx(t.intermediate_values[1])
        else:
            assert sorted(t.intermediate_values) == [0]
    rp, value, number, why = best_of(study, objective)
    assert rp.engine == "grid" and number is not None and value == study.best_value


def test_tune_policy_regimes_fallback_and_out_of_sample_table(tmp_path: Path) -> None:
    cfg = _cfg(n_trials=10)
    data = _data(cfg)
    res = tune_policy(data, cfg, prefix="t", storage=f"journal:{tmp_path / 'j.log'}")
    keys = [o.spec.key for o in res.outcomes]
    assert keys == ["regime-0-trend_up", "regime-1-trend_down", "regime-2-range", "regime-3-high_volatility",
                    "static-grid", "static-dca"]
    never = res.outcome("regime-3-high_volatility")
    assert never.fallback and "never predicts" in never.fallback and "no new entries" in never.fallback
    assert never.params == SAFE_DEFAULT and never.active_bars == 0
    assert res.policy.regimes[3].engine == "none"
    for key in keys[:3] + keys[4:]:
        o = res.outcome(key)
        assert o.n_complete + o.n_pruned == 10, key
    assert res.static_grid.engine == "grid" and res.static_dca.engine == "dca"
    table = out_of_sample_table(data, res.policy, res.static_grid, res.static_dca)
    assert [r.name for r in table] == list(ROW_NAMES)
    hold_bars = sum(len(data.slice(p, data.holdout).bars) for p in data.pairs) // 2
    for row in table:
        assert row.portfolio["bars"] == hold_bars
        assert set(row.per_pair) == {"BTC/USDT", "ETH/USDT"}
    assert table[3].portfolio["trades"] == 2  # buy and hold: one buy per pair
    # Same seed, same data, fresh storage: the same policy (seeded TPE, deterministic backtests).
    again = tune_policy(data, cfg, prefix="t", storage=f"journal:{tmp_path / 'j2.log'}")
    assert again.policy == res.policy
    # Rerun on the first storage: the studies are already full, nothing new runs, same result.
    resumed = tune_policy(data, cfg, prefix="t", storage=f"journal:{tmp_path / 'j.log'}")
    assert resumed.policy == res.policy
    assert resumed.outcome("static-grid").n_complete + resumed.outcome("static-grid").n_pruned == 10


def test_the_worker_context_round_trips_the_predictions_and_keeps_no_password() -> None:
    import json

    from pipeline.tune_context import _unpack, context_payload

    cfg = Config.model_validate({"tuning": {"storage": "postgresql://bot:s3cret-pw@db:5432/optuna"}})
    data = _data(_cfg())
    payload = context_payload(cfg, {"content_sha256": "x"}, data)
    text = json.dumps(payload)
    assert "s3cret-pw" not in text and payload["config"]["tuning"]["storage"] is None
    for p in data.pairs:
        stored = payload["pairs"][p.pair]
        assert np.array_equal(_unpack(stored["regimes"], np.int8).astype(np.int64), p.regimes)
        assert np.array_equal(_unpack(stored["probs"], np.float32).astype(np.float64),
                              p.probs.astype(np.float32).astype(np.float64))
    assert len(text) < 200_000  # two pairs x 6,000 bars: compact enough to store on every study


def test_worker_processes_give_the_same_policy_as_one_process(tmp_path: Path) -> None:
    """tuning.n_jobs = 2 runs the studies in two forked processes, each study with its own seed: the
    result equals the single-process run, and every trial ran in a worker, not here."""
    import os

    one = tune_policy(_data(_cfg(n_trials=10, n_jobs=1)), _cfg(n_trials=10, n_jobs=1), prefix="t",
                      storage=f"journal:{tmp_path / 'one.log'}")
    url = f"journal:{tmp_path / 'two.log'}"
    two = tune_policy(_data(_cfg(n_trials=10)), _cfg(n_trials=10), prefix="t", storage=url)
    assert two.policy == one.policy
    assert (two.static_grid, two.static_dca) == (one.static_grid, one.static_dca)
    from pipeline.tuning_storage import open_storage

    workers = {t.user_attrs["worker"] for s in open_storage(url).get_all_studies()
               for t in open_storage(url).get_all_trials(s._study_id, deepcopy=False)}
    assert workers and all(not w.endswith(f":{os.getpid()}") for w in workers)


def test_the_hysteresis_report_counts_predicted_and_armed_bars() -> None:
    import pandas as pd

    from models.evaluate import PROBA_COLUMNS
    from pipeline.policy import hysteresis_line, hysteresis_report

    cfg = _cfg()
    data = _data(cfg)
    rows = []
    for p in data.pairs:
        known = p.regimes >= 0
        proba = np.full((int(known.sum()), 4), 0.2 / 3)
        proba[np.arange(len(proba)), p.regimes[known]] = 0.8
        rows.append(pd.DataFrame(proba, columns=PROBA_COLUMNS))
    h = hysteresis_report(cfg, data, pd.concat(rows, ignore_index=True))
    assert h["min_regime_probability"] == cfg.strategy.min_regime_probability
    assert h["top_probability_quantiles"]["p50"] == pytest.approx(0.8)
    assert h["share_at_or_above_threshold"] == 1.0
    assert sum(h["predicted_share"].values()) == pytest.approx(1.0)
    assert sum(h["armed_share"].values()) == pytest.approx(1.0)
    assert h["predicted_share"]["high_volatility"] == 0 and h["armed_share"]["high_volatility"] == 0
    # armed = what the hysteresis (min_dwell_bars 3) makes of the predictions: close to, not equal to
    assert abs(h["armed_share"]["range"] - h["predicted_share"]["range"]) < 0.05
    assert "min_regime_probability 0.35" in hysteresis_line(h) and "range" in hysteresis_line(h)
