"""Hot swap: moving the champion alias during a replay switches the policy at the next bar; a broken
bundle is refused and trading continues on the old one, and so is a bundle whose grids lose money per
round trip after fees when trading real money (paper trading takes it, with a warning)."""

from __future__ import annotations

import pytest

from core.config import GridConfig, config_from_dict
from live.app import GridFeeCheck
from live.replay import load_replay_state, run_replay, start_emulator
from live.state import StateStore
from live.watcher import ChampionWatcher
from models.classifier import RegimeClassifier
from models.policy_bundle import set_alias
from strategies.policy import Policy, RegimeParams

from . import bundles
from .conftest import BAR_MS, DAY_MS, SAMPLE

START = 1672531200000 + 6 * DAY_MS  # past the 1h features' warm-up (1,307 bars)
N_BARS = 16
SWAP_AFTER = 5  # the alias moves while bar 5 is being traded


def _cfg(uri):
    return config_from_dict({
        "market": {"pairs": ["BTC/USDT"], "base_timeframe": "5m", "feature_timeframes": ["1h"]},
        "risk": {"capital_quote": 1000.0, "max_allocation_per_pair_pct": 100.0, "max_exposure_pct": 90.0},
        "mlflow": {"tracking_uri": uri},
        "live": {"candle_delay_s": 0.0},
    })


def _policy_by_bar(store: StateStore) -> dict[int, str]:
    rows = store._db.execute("SELECT bar_ts, policy_version FROM regimes WHERE pair = 'BTC/USDT' ORDER BY bar_ts")
    return {int((ts - START) // BAR_MS): v for ts, v in rows}


def _replay(cfg, tmp_path, moves: dict[int, str], fee_mode: str | None = None):
    watcher = ChampionWatcher(cfg, synchronous=True)
    first = watcher.load_current()
    env = start_emulator(load_replay_state(SAMPLE, cfg, START), cfg)
    if fee_mode is not None:  # what `aiotrade live` wires in: "live" with --live, else "paper"
        watcher.grid_check = GridFeeCheck(cfg, env.venue, env.clock, fee_mode)
    store = StateStore(tmp_path / "s.db", namespace=cfg.live.bot_name)

    def on_bar(close_ms, reports):
        k = (close_ms - START) // BAR_MS - 1  # the bar just traded
        if k in moves:
            set_alias(cfg.mlflow.model_name, cfg.mlflow.alias, moves[k])

    try:
        runner = run_replay(cfg, env, store, first, START, START + N_BARS * BAR_MS, feed=watcher, on_bar=on_bar)
        orders = [o.client_order_id for o in env.trading.account("replay").open_orders()]
    finally:
        env.close()
    return runner, store, watcher, orders


def test_alias_move_switches_at_the_next_bar(tmp_path, monkeypatch):
    uri = bundles.open_registry(tmp_path, monkeypatch)
    v_grid = bundles.register(bundles.bundle(bundles.grid_policy()))
    v_dca = bundles.register(bundles.bundle(bundles.dca_policy()), alias=None)
    runner, store, _, _ = _replay(_cfg(uri), tmp_path, {SWAP_AFTER: v_dca})
    by_bar = _policy_by_bar(store)
    assert len(by_bar) == N_BARS
    assert {by_bar[k] for k in range(SWAP_AFTER + 1)} == {f"aiotrade-policy/{v_grid}"}
    assert {by_bar[k] for k in range(SWAP_AFTER + 1, N_BARS)} == {f"aiotrade-policy/{v_dca}"}
    assert store.get_meta("policy_version") == f"aiotrade-policy/{v_dca}"
    # the grid's entries were cancelled at the switch and the DCA armed: its orders now rest
    kinds = {i.engine.kind for i in store.intents("BTC/USDT") if i.bar_ts >= START + (SWAP_AFTER + 1) * BAR_MS}
    assert kinds and kinds <= {4, 5, 6, 7}, f"after the switch only DCA orders are placed, got kinds {kinds}"
    store.close()


@pytest.mark.parametrize("broken", ["other_pairs", "unfitted_model"])
def test_broken_bundle_is_refused_and_trading_goes_on(tmp_path, monkeypatch, broken):
    uri = bundles.open_registry(tmp_path, monkeypatch)
    v_good = bundles.register(bundles.bundle(bundles.grid_policy()))
    if broken == "other_pairs":
        bad = bundles.bundle(bundles.dca_policy(), pairs=("SOL/USDT",))
    else:  # loads fine, but cannot predict: refused by the probe at the bar boundary
        bad = bundles.bundle(bundles.dca_policy(), clf=RegimeClassifier())
    v_bad = bundles.register(bad, alias=None)
    runner, store, watcher, orders = _replay(_cfg(uri), tmp_path, {SWAP_AFTER: v_bad})
    assert set(_policy_by_bar(store).values()) == {f"aiotrade-policy/{v_good}"}
    assert runner.stats.bars == N_BARS, "trading went on for every bar"
    assert v_bad in watcher.refused
    assert ("not for BTC/USDT" in watcher.refused[v_bad]) if broken == "other_pairs" else watcher.refused[v_bad]
    assert orders, "the old policy's orders still rest"
    refusals = [e for e in store.events(50) if e["kind"] == "policy_refused"]  # what `aiotrade status` lists
    assert len(refusals) == 1 and refusals[0]["level"] == "error"
    assert refusals[0]["message"] == (f"policy aiotrade-policy/{v_bad} refused, aiotrade-policy/{v_good} keeps "
                                      f"trading: {watcher.refused[v_bad]}")
    store.close()


def test_background_watcher_loads_a_moved_alias_off_thread(tmp_path, monkeypatch):
    import time

    uri = bundles.open_registry(tmp_path, monkeypatch)
    bundles.register(bundles.bundle(bundles.grid_policy()))
    v2 = bundles.register(bundles.bundle(bundles.dca_policy()), alias=None)
    watcher = ChampionWatcher(_cfg(uri), interval_s=0.05)
    watcher.load_current()
    watcher.start()
    try:
        assert watcher.poll(0) is None
        set_alias("aiotrade-policy", "champion", v2)
        deadline, new = time.monotonic() + 20, None
        while new is None and time.monotonic() < deadline:
            new = watcher.poll(0)
            time.sleep(0.05)
        assert new is not None and new.version == f"aiotrade-policy/{v2}"
        assert watcher.poll(0) is None, "handed over once"
    finally:
        watcher.close()


def _atr_grid_policy() -> Policy:
    """+/-3 x ATR(14) in 12 levels: steps of ~0.07% on 5m BTC against 0.2% of round-trip fees."""
    g = GridConfig(levels=12, range_atr_mult=3.0, order_size_quote=60.0)
    return Policy(regimes={i: RegimeParams(engine="grid", grid=g) for i in range(4)}, min_dwell_bars=0,
                  min_regime_probability=0.0)


@pytest.mark.parametrize("losing", ["step", "atr"])
def test_a_grid_losing_after_fees_is_refused_at_the_swap_when_trading_real_money(tmp_path, monkeypatch, losing):
    uri = bundles.open_registry(tmp_path, monkeypatch)
    v_good = bundles.register(bundles.bundle(bundles.dca_policy()))
    bad = bundles.grid_policy(0.1) if losing == "step" else _atr_grid_policy()
    v_bad = bundles.register(bundles.bundle(bad), alias=None)
    runner, store, watcher, orders = _replay(_cfg(uri), tmp_path, {SWAP_AFTER: v_bad}, fee_mode="live")
    assert set(_policy_by_bar(store).values()) == {f"aiotrade-policy/{v_good}"}, "the old policy kept trading"
    assert runner.stats.bars == N_BARS and orders
    why = watcher.refused[v_bad]
    if losing == "step":
        assert why.startswith(f"policy aiotrade-policy/{v_bad} regime 0.grid.grid_step_pct: grid profit per round "
                              "trip after fees is -0.100% (step 0.10% < fees 0.20%)"), why
        assert "(fix: raise grid.grid_step_pct to at least 0.201" in why
    else:  # judged on the emulator's candles before the swap, fetched through real ccxt
        assert why.startswith(f"BTC/USDT: policy aiotrade-policy/{v_bad} regime 0.grid.range_atr_mult (range +/-3 x "
                              "ATR(14), 12 levels): grid profit per round trip after fees is -0."), why
        assert "every grid round trip loses money (estimated with a typical ATR of 0." in why
        assert "(fix: raise grid.range_atr_mult to at least " in why
    store.close()


def test_paper_trading_swaps_in_a_grid_losing_after_fees_with_a_warning(tmp_path, monkeypatch, runner_records):
    uri = bundles.open_registry(tmp_path, monkeypatch)
    bundles.register(bundles.bundle(bundles.dca_policy()))
    v_atr = bundles.register(bundles.bundle(_atr_grid_policy()), alias=None)
    runner, store, watcher, _ = _replay(_cfg(uri), tmp_path, {SWAP_AFTER: v_atr}, fee_mode="paper")
    by_bar = _policy_by_bar(store)
    assert {by_bar[k] for k in range(SWAP_AFTER + 1, N_BARS)} == {f"aiotrade-policy/{v_atr}"}
    assert not watcher.refused
    warned = [r.getMessage() for r in runner_records if getattr(r, "event", "") == "grid_below_fees"]
    assert len(warned) == 4, warned  # one per grid regime of the table
    assert warned[0].startswith(f"BTC/USDT: policy aiotrade-policy/{v_atr} regime 0.grid.range_atr_mult")
    assert "paper trading goes on; `aiotrade live --live` refuses this grid" in warned[0]
    store.close()
