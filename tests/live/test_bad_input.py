"""Bad input gets one clear message and loses nothing: no champion, missing keys, no confirmation, a policy
for other pairs or timeframes, an exchange unreachable at start, candles that stop coming."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from core.config import config_from_dict
from core.errors import ConfigError, ModelError
from exchange.ccxt_flows import RetryPolicy
from exchange.ccxt_venue import CcxtVenue
from live.app import LiveOptions, check_live_allowed, open_state
from live.clock import WallClock
from live.policy_source import StaticPolicy, check_compatible
from live.replay import load_replay_state, run_replay, start_emulator
from live.runner import RepeatedFailure, Runner
from live.state import ACTIVE, StateStore
from live.status import read_status

from .conftest import BAR_MS, SAMPLE, START_MS, assert_state_matches_exchange, busy_config

REPO = Path(__file__).resolve().parents[2]


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("AIOTRADE_")}
    return subprocess.run([sys.executable, "-m", "pipeline.cli.main", *args], cwd=REPO, env={**base, **(env or {})},
                          capture_output=True, text=True, timeout=120)


def test_live_mode_without_keys_says_which_variables(tmp_path):
    p = _cli("live", "--live", "--yes-i-understand", "--static", "--state-db", str(tmp_path / "s.db"))
    assert p.returncode == 2, p.stderr
    assert "binance API credentials missing: key, secret" in p.stderr
    assert "AIOTRADE_BINANCE_KEY" in p.stderr and "Traceback" not in p.stderr
    assert not (tmp_path / "s.db").exists(), "nothing was started"


def test_live_mode_needs_an_explicit_confirmation():
    cfg = busy_config()
    env = {"AIOTRADE_BINANCE_KEY": "k" * 12, "AIOTRADE_BINANCE_SECRET": "s" * 12}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        with pytest.raises(ConfigError, match="live trading not confirmed"):
            check_live_allowed(cfg, LiveOptions(live=True), confirm=lambda q: False)
        assert check_live_allowed(cfg, LiveOptions(live=True), confirm=lambda q: "REAL orders" in q) is not None
        assert check_live_allowed(cfg, LiveOptions(live=False), confirm=None) is None  # paper: no keys needed
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)


def test_no_champion_says_run_train_first(tmp_path, monkeypatch):
    from live.watcher import ChampionWatcher

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = config_from_dict({"mlflow": {"tracking_uri": f"sqlite:///{tmp_path / 'empty.db'}"}})
    with pytest.raises(ModelError) as e:
        ChampionWatcher(cfg).load_current()
    assert "no policy registered as models:/aiotrade-policy@champion" in e.value.problem
    assert "run `aiotrade train` first" in e.value.fix


@pytest.mark.parametrize("change, words", [
    ({"market": {"pairs": ["SOL/USDT"]}}, "not for SOL/USDT"),
    ({"market": {"base_timeframe": "15m", "feature_timeframes": ["1h"]}}, "base timeframe 5m"),
    ({"exchange": {"name": "bitget"}}, "trained on binance candles"),
])
def test_policy_for_other_pairs_timeframes_or_exchange_is_refused(change, words):
    trained = StaticPolicy.from_config(busy_config())
    trained.pairs, trained.exchange = ("BTC/USDT", "ETH/USDT"), "binance"
    with pytest.raises(ModelError) as e:
        check_compatible(trained, config_from_dict(change))
    assert words in e.value.problem and "aiotrade train" in e.value.fix


def test_state_db_of_paper_trading_is_not_reused_for_live(tmp_path):
    cfg = busy_config()
    store = open_state(cfg, LiveOptions(state_db=str(tmp_path / "s.db")), "paper")
    store.set_meta("mode", "paper")
    store.close()
    with pytest.raises(ConfigError, match="holds paper trading state"):
        open_state(cfg, LiveOptions(state_db=str(tmp_path / "s.db")), "live")


def test_exchange_unreachable_at_start_retries_with_a_clear_status(tmp_path):
    cfg = busy_config(retry_initial_s=0.05, retry_max_s=0.2)
    venue = CcxtVenue.connect("binance", base_url="http://127.0.0.1:9", rate_limit=False, timeout_s=1.0,
                              retry=RetryPolicy(attempts=1))
    store = StateStore(tmp_path / "s.db", namespace=cfg.live.bot_name)
    runner = Runner(cfg, venue, store, StaticPolicy.from_config(cfg), WallClock())
    t = threading.Thread(target=runner.run)
    t.start()
    deadline = time.monotonic() + 20
    while runner.stats.retries < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    state = store.get_meta("runner_state") or ""
    runner.stop()
    t.join(timeout=10)
    assert not t.is_alive(), "the runner stops cleanly while retrying"
    assert runner.stats.retries >= 3
    assert state.startswith("retrying starting in") and "binance" in state, state
    assert read_status(tmp_path / "s.db").runner["runner_state"] == "stopped"
    store.close()


def test_candles_that_stop_pause_entries_and_keep_exits(tmp_path):
    cfg = busy_config()
    last = int(load_replay_state(SAMPLE, cfg, START_MS).candles.span_ms()[1])  # the sample's last candle closes here
    start = last - 60 * BAR_MS
    env = start_emulator(load_replay_state(SAMPLE, cfg, start), cfg)
    store = StateStore(tmp_path / "s.db", namespace=cfg.live.bot_name)
    try:
        run_replay(cfg, env, store, StaticPolicy.from_config(cfg), start, last + 6 * BAR_MS)
        events = [e for e in store.events(50) if e["kind"] == "stale_data"]
        assert len(events) == 1, "said once per pause, not every bar"
        assert "no new candle for 2 bars" in events[0]["message"] and "entries paused" in events[0]["message"]
        assert "no new candle" in read_status(tmp_path / "s.db").pairs[0].paused
        active = store.intents("BTC/USDT", ACTIVE)
        assert all(i.role == "exit" for i in active), "resting entries were cancelled"
        held = store.position("BTC/USDT").base
        assert held > 0 and sum(i.remaining for i in active) > 0, "held inventory keeps its exits"
        assert {o.client_order_id for o in env.trading.account("replay").open_orders()} == {i.client_id for i in active}
    finally:
        env.close()
        store.close()


def test_order_rate_limit_defers_the_rest_to_later_bars(tmp_path):
    cfg = busy_config().model_copy(update={"risk": busy_config().risk.model_copy(update={"max_orders_per_minute": 2})})
    env = start_emulator(load_replay_state(SAMPLE, cfg, START_MS), cfg)
    store = StateStore(tmp_path / "s.db", namespace=cfg.live.bot_name)
    per_bar = []
    try:
        run_replay(cfg, env, store, StaticPolicy.from_config(cfg), START_MS, START_MS + 12 * BAR_MS,
                   on_bar=lambda close, reps: per_bar.append(sum(r.exec.created + r.exec.cancelled for r in reps)))
        assert max(per_bar) <= 2, f"at most 2 order requests per (virtual) minute, got {per_bar}"
        assert [e for e in store.events(50) if e["kind"] == "rate_limited"], "the deferral is reported"
        # the grid's first decision wants more than 2 orders: they arrive over the next bars
        assert sum(per_bar[:4]) > 2
        assert_state_matches_exchange(store, env, ["BTC/USDT"], 1000.0)
    finally:
        env.close()
        store.close()


def test_replay_outside_the_data_names_the_range():
    from core.errors import DataError

    with pytest.raises(DataError) as e:
        load_replay_state(SAMPLE, busy_config(), START_MS + 400 * 86_400_000)
    assert "holds BTC/USDT candles from 2023-01-01" in e.value.problem and "--from" in e.value.fix


def test_a_repeating_bug_stops_the_runner_loudly_instead_of_looping(tmp_path, monkeypatch):
    """An unexpected error (not an exchange error) is logged with its traceback and retried; the same
    error five times in a row stops the runner with a clear status, never a silent crash-loop."""
    import live.trader

    def broken(self, bar_ts):
        raise RuntimeError("feature builder exploded")

    monkeypatch.setattr(live.trader.PairTrader, "_predict", broken)
    cfg = busy_config(retry_initial_s=0.01, retry_max_s=0.02)
    env = start_emulator(load_replay_state(SAMPLE, cfg, START_MS), cfg)
    store = StateStore(tmp_path / "s.db", namespace=cfg.live.bot_name)
    try:
        with pytest.raises(RepeatedFailure, match="failed 5 times in a row with RuntimeError: feature builder exploded"):
            run_replay(cfg, env, store, StaticPolicy.from_config(cfg), START_MS, START_MS + 10 * BAR_MS)
        assert store.get_meta("runner_state") == ("stopped: BTC/USDT cycle failed 5 times in a row: "
                                                  "RuntimeError: feature builder exploded")
        assert len([e for e in store.events(20) if e["kind"] == "cycle_error"]) == 5
        assert not env.trading.account("replay").orders, "nothing was sent by the failing cycle"
    finally:
        env.close()
        store.close()


@pytest.mark.parametrize("sell_on_kill", [False, True])
def test_drawdown_kill_switch_stops_and_cancels_entries(tmp_path, sell_on_kill):
    """March 2023's fall through a grid with a 0.8% drawdown limit: the engine's kill switch (the same
    code as the backtest's) fires, the runner reports it, cancels every entry, and either keeps the
    inventory's exits or sells the inventory at market."""
    from core.config import config_from_dict

    cfg = config_from_dict({
        "market": {"pairs": ["BTC/USDT"], "base_timeframe": "5m", "feature_timeframes": ["1h"]},
        "strategy": {"engine": "grid", "grid": {"grid_step_pct": 0.3, "levels": 10, "order_size_quote": 100.0}},
        "risk": {"capital_quote": 1000.0, "max_allocation_per_pair_pct": 100.0, "max_exposure_pct": 90.0,
                 "max_drawdown_pct": 0.8, "sell_inventory_on_kill": sell_on_kill},
    })
    start = 1678233600000  # 2023-03-08 00:00 UTC
    env = start_emulator(load_replay_state(SAMPLE, cfg, start), cfg)
    store = StateStore(tmp_path / "s.db", namespace=cfg.live.bot_name)
    try:
        run_replay(cfg, env, store, StaticPolicy.from_config(cfg), start, start + 400 * BAR_MS)
        kills = [e for e in store.events(100) if e["kind"] == "kill_switch"]
        assert len(kills) == 1 and "drawdown kill switch" in kills[0]["message"]
        killed_at = kills[0]["ts_ms"]
        active = store.intents("BTC/USDT", ACTIVE)
        assert not [i for i in active if i.role == "entry"], "no entry rests after the kill switch"
        late_entries = [i for i in store.intents("BTC/USDT") if i.role == "entry" and i.created_ms > killed_at]
        assert not late_entries, "no entry was placed after it"
        if sell_on_kill:
            sold = [i for i in store.intents("BTC/USDT") if i.engine.kind == 10]
            assert sold and sold[0].status == "filled" and store.position("BTC/USDT").base < 1e-4
        else:
            assert store.position("BTC/USDT").base > 0 and [i for i in active if i.role == "exit"]
        assert_state_matches_exchange(store, env, ["BTC/USDT"], 1000.0)
    finally:
        env.close()
        store.close()
