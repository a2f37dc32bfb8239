"""The whole live stack on the emulator (static grid): the DB ends equal to the exchange, nothing twice."""

from __future__ import annotations

from live.policy_source import StaticPolicy
from live.replay import run_replay
from live.state import StateStore

from .conftest import BAR_MS, START_MS, assert_state_matches_exchange


def test_replay_ends_with_the_exchanges_state(replay_env, tmp_path):
    cfg = replay_env.extra["cfg"]
    store = StateStore(tmp_path / "s.db", namespace=cfg.live.bot_name)
    runner = run_replay(cfg, replay_env, store, StaticPolicy.from_config(cfg), START_MS, START_MS + 120 * BAR_MS,
                        keep_reports=True)
    assert runner.stats.bars == 120
    fills = store.fills("BTC/USDT")
    assert len(fills) >= 4, "the busy grid should trade within 10 hours"
    assert_state_matches_exchange(store, replay_env, ["BTC/USDT"], 1000.0)
    # the engine booked exactly the fills the venue reported
    assert runner.traders[0].engine.inventory == store.position("BTC/USDT").base or abs(
        runner.traders[0].engine.inventory - store.position("BTC/USDT").base) < 1e-9
    # a second cycle at the same time changes nothing: no duplicates on a re-run
    n_orders = len(replay_env.trading.account("replay").orders)
    runner.run_pending_bar()
    assert len(replay_env.trading.account("replay").orders) == n_orders
    store.close()
