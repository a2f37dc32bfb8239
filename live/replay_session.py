"""`aiotrade live --replay DATA --from --to`: one replay run and its summary for the CLI."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.config import Config
from core.errors import ConfigError
from live.app import GridFeeCheck, LiveOptions, load_policy
from live.replay import ReplayEnv, load_replay_state, run_replay, start_emulator
from live.runner import Runner
from live.runner_lock import RunnerLock
from live.state import ACTIVE, StateStore

DEFAULT_REPLAY_DB = "user_data/replay.db"


@dataclass
class ReplayResult:
    runner: Runner
    store: StateStore
    balances: dict[str, dict[str, float]]
    capital_per_pair: float


def run_replay_cli(cfg: Config, data: Path, start_ms: int, end_ms: int, state_db: Path | None,
                   static: bool) -> ReplayResult:
    """A fresh state DB, the emulator on `data`, the runner from `start_ms` to `end_ms` (exclusive)."""
    path = Path(state_db or DEFAULT_REPLAY_DB)
    if path.exists() and path.resolve() == Path(cfg.live.state_db).resolve():
        raise ConfigError(f"{path} is the live state database", "give the replay its own --state-db")
    RunnerLock(path).acquire().release()  # another replay writing this file: refused before deleting it
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)  # a replay always starts flat
    active, feed = load_policy(cfg, LiveOptions(static=static))
    feed.close()  # a replay trades one policy: reproducible runs
    env: ReplayEnv = start_emulator(load_replay_state(data, cfg, start_ms), cfg)
    store = StateStore(path, namespace=cfg.live.bot_name, durable_intents=False, exclusive=True)
    try:
        # As in paper trading: a grid that loses money per round trip after fees is warned about
        # (`--live` would refuse it), on the replay's own candles for an ATR-sized grid.
        GridFeeCheck(cfg, env.venue, env.clock, "paper")(active)
        runner = run_replay(cfg, env, store, active, start_ms, end_ms)
        balances = env.trading.account("replay").snapshot()["balances"]
    finally:
        env.close()
    from strategies.risk import pair_capital

    capital = pair_capital(cfg.risk.capital_quote, cfg.risk.max_allocation_per_pair_pct, len(cfg.market.pairs))
    return ReplayResult(runner, store, balances, capital)


def replay_summary(result: ReplayResult) -> dict[str, Any]:
    store = result.store
    pairs = []
    for pair in store.pairs():
        pos = store.position(pair)
        assert pos is not None
        curve = store.equity_curve(pair)
        equity = curve[-1][1] if curve else pos.cash_quote
        pairs.append({
            "pair": pair, "fills": pos.n_fills, "open_orders": len(store.intents(pair, ACTIVE)),
            "cash_quote": pos.cash_quote, "inventory_base": pos.base, "equity_quote": equity,
            "return_pct": (equity / result.capital_per_pair - 1.0) * 100.0,
        })
    return {
        "bars": result.runner.stats.bars, "policy": result.runner.active.version, "pairs": pairs,
        "venue_balances": {a: round(b["free"] + b["locked"], 8) for a, b in result.balances.items()},
        "state_db": str(store.path),
    }
