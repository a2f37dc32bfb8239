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
    assert abs(runner.traders[0].engine.inventory - store.position("BTC/USDT").base) < 1e-9
    # a second cycle at the same time changes nothing: no duplicates on a re-run
    n_orders = len(replay_env.trading.account("replay").orders)
    runner.run_pending_bar()
    assert len(replay_env.trading.account("replay").orders) == n_orders
    store.close()


def test_cli_replay_with_the_champion_prints_a_summary(tmp_path, monkeypatch):
    """`aiotrade live --replay DATA --from --to` end to end: the champion from the registry, the emulator,
    the summary table, and a state DB that `aiotrade status` reads."""
    import json
    import os
    import subprocess
    import sys

    from . import bundles
    from .harness import REPO

    uri = bundles.open_registry(tmp_path, monkeypatch)
    bundles.register(bundles.bundle(bundles.mixed_policy()))
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    db = tmp_path / "replay.db"
    cmd = [sys.executable, "-m", "pipeline.cli.main", "live", "--replay", str(bundles.SAMPLE), "--from", "2023-01-08",
           "--to", "2023-01-08T02:00", "--state-db", str(db)]
    p = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "24 bars" in p.stdout and "aiotrade-policy/1" in p.stdout and "BTC/USDT" in p.stdout
    st = subprocess.run([sys.executable, "-m", "pipeline.cli.main", "status", "--state-db", str(db), "--json"],
                        cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert st.returncode == 0, st.stderr
    doc = json.loads(st.stdout)
    assert {p["pair"] for p in doc["pairs"]} == {"BTC/USDT", "ETH/USDT"}
    assert all(p["policy_version"] == "aiotrade-policy/1" for p in doc["pairs"])
    assert doc["runner"]["mode"] == "replay"


def test_bitget_replay_ends_with_the_exchanges_state(tmp_path):
    """The same stack on Bitget's protocol (v2 spot, passphrase signing, create answers without status)."""
    from live.replay import load_replay_state, start_emulator

    from .conftest import SAMPLE, dca_config

    cfg = dca_config()
    cfg = cfg.model_copy(update={"exchange": cfg.exchange.model_copy(update={"name": "bitget"})})
    env = start_emulator(load_replay_state(SAMPLE, cfg, START_MS), cfg)
    store = StateStore(tmp_path / "s.db", namespace=cfg.live.bot_name)
    try:
        runner = run_replay(cfg, env, store, StaticPolicy.from_config(cfg), START_MS, START_MS + 40 * BAR_MS)
        assert runner.stats.bars == 40 and len(store.fills("BTC/USDT")) >= 3
        assert any("/api/v2/spot/trade/place-order" in r.path for r in env.state.requests)
        assert_state_matches_exchange(store, env, ["BTC/USDT"], 1000.0)
    finally:
        env.close()
        store.close()


def test_restart_under_another_policy_switches_at_the_first_bar(tmp_path):
    """Stopped under a grid, restarted with a DCA config: the saved engine retires the grid like a hot swap
    (entries cancelled, inventory keeps its exits) and the DCA trades from the first bar."""
    from live.replay import load_replay_state, start_emulator

    from .conftest import SAMPLE, busy_config, dca_config

    grid, dca = busy_config(), dca_config()
    env = start_emulator(load_replay_state(SAMPLE, grid, START_MS), grid)
    store = StateStore(tmp_path / "s.db", namespace=grid.live.bot_name)
    try:
        run_replay(grid, env, store, StaticPolicy.from_config(grid), START_MS, START_MS + 20 * BAR_MS)
        held = store.position("BTC/USDT").base
        assert held > 0
        runner = run_replay(dca, env, store, StaticPolicy.from_config(dca), START_MS + 20 * BAR_MS,
                            START_MS + 30 * BAR_MS)
        rows = store._db.execute("SELECT bar_ts, policy_version FROM regimes ORDER BY bar_ts").fetchall()
        versions = [v for _, v in rows]
        assert versions[19].startswith("static:grid") and all(v.startswith("static:dca") for v in versions[20:])
        # the grid's resting sells now carry legacy exits (kept on the exchange, re-labelled, not replaced)
        assert {i.engine.kind for i in store.intents("BTC/USDT")} & {8, 9}, "the grid's inventory kept its exits"
        new = {i.engine.kind for i in store.intents("BTC/USDT") if i.bar_ts >= START_MS + 20 * BAR_MS}
        assert new & {4, 5, 6} and not new & {1, 2, 3}, "only the DCA places new orders"
        assert runner.stats.bars == 10
        assert_state_matches_exchange(store, env, ["BTC/USDT"], 1000.0)
    finally:
        env.close()
        store.close()
