"""Composition root of `aiotrade live`: builds venue, policy, clock and runner from the config and flags.

Kept apart from the CLI so the CLI stays thin (it imports this module lazily) and tests can start
the very same stack in-process. Safety rules enforced here:
- Paper trading unless `--live`; real orders also need API keys and an explicit confirmation.
- A state DB remembers the mode and exchange it was used with; mixing paper and live state (or two
  exchanges) in one DB is refused.
- No champion policy, or one trained for other pairs/timeframes: a clear error before anything starts.
- Real orders with a grid whose step is below the round-trip fees (every round trip loses money): refused.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.config import Config
from core.errors import ConfigError
from core.market_rules import venue_fees
from core.secrets import Credentials, load_credentials
from exchange.ccxt_venue import CcxtVenue
from exchange.paper import PaperVenue
from exchange.port import Venue
from live.clock import Clock, FollowingClock, WallClock
from live.policy_source import ActivePolicy, StaticPolicy, check_compatible
from live.runner import PolicyFeed, Runner
from live.state import StateStore
from strategies.grid_profit import refuse_losing_grids


@dataclass(frozen=True)
class LiveOptions:
    live: bool = False  # real orders
    confirmed: bool = False  # --yes-i-understand (or the typed prompt) was given
    static: bool = False  # trade the config's strategy without a model
    state_db: str | None = None
    follow_exchange_clock: bool = False  # take time from the exchange (emulators with a virtual clock)


def check_live_allowed(cfg: Config, opts: LiveOptions, confirm: Callable[[str], bool] | None) -> Credentials | None:
    """The keys for live trading after every gate passed; None for paper trading."""
    if not opts.live:
        return None
    creds = load_credentials(cfg.exchange.name, cfg.exchange.secrets_file, required=True)
    if opts.confirmed:
        return creds
    question = (f"REAL orders on {cfg.exchange.name} for {', '.join(cfg.market.pairs)} with up to "
                f"{cfg.risk.capital_quote:g} of capital. Type the exchange name to confirm")
    if confirm is None or not confirm(question):
        raise ConfigError("live trading not confirmed", "pass --yes-i-understand, or type the exchange name "
                          "when asked (run without --live for paper trading)")
    return creds


def open_state(cfg: Config, opts: LiveOptions, mode: str) -> StateStore:
    path = opts.state_db or cfg.live.state_db
    store = StateStore(path, namespace=cfg.live.bot_name)
    used_mode, used_ex = store.get_meta("mode"), store.get_meta("exchange")
    if used_mode and used_mode != mode:
        store.close()
        raise ConfigError(f"state DB {path} holds {used_mode} trading state; this run is {mode}",
                          "point live.state_db (or --state-db) at another file for this mode")
    if used_ex and used_ex != cfg.exchange.name:
        store.close()
        raise ConfigError(f"state DB {path} belongs to {used_ex}; this run trades on {cfg.exchange.name}",
                          "point live.state_db (or --state-db) at another file for this exchange")
    used_bot = store.get_meta("bot_name")
    if used_bot and used_bot != cfg.live.bot_name:
        store.close()
        raise ConfigError(f"state DB {path} was written by bot {used_bot!r}, the config names {cfg.live.bot_name!r}",
                          "its orders carry the old name's prefix: keep live.bot_name, or use another state DB")
    store.set_meta("bot_name", cfg.live.bot_name)
    return store


def make_venue(cfg: Config, creds: Credentials | None, state_db: str) -> Venue:
    fees = (cfg.exchange.maker_fee_pct, cfg.exchange.taker_fee_pct)
    data = CcxtVenue.connect(cfg.exchange.name, credentials=creds, base_url=cfg.exchange.base_url,
                             timeout_s=cfg.exchange.timeout_s, fees_pct=fees,
                             rate_limit=not _is_loopback(cfg.exchange.base_url))
    if creds is not None:
        return data
    quotes = {p.split("/")[1] for p in cfg.market.pairs}
    paper_db = str(Path(state_db).with_name(Path(state_db).stem + f"-paper-{cfg.exchange.name}.db"))
    return PaperVenue(data, paper_db, balances={q: cfg.risk.capital_quote for q in quotes},
                      timeframe=cfg.market.base_timeframe)


def load_policy(cfg: Config, opts: LiveOptions) -> tuple[ActivePolicy, PolicyFeed]:
    if opts.static:
        return StaticPolicy.from_config(cfg), PolicyFeed()
    from live.watcher import ChampionWatcher

    watcher = ChampionWatcher(cfg)
    active = watcher.load_current()
    check_compatible(active, cfg)
    watcher.start()
    return active, watcher


def build_runner(cfg: Config, opts: LiveOptions, confirm: Callable[[str], bool] | None = None) -> Runner:
    creds = check_live_allowed(cfg, opts, confirm)
    mode = "live" if creds is not None else "paper"
    active, feed = load_policy(cfg, opts)
    if mode == "live":  # real money: refuse a grid that loses on every round trip, as Binance's grid bot does
        maker_fee, _ = venue_fees(cfg.exchange.name, cfg.exchange.maker_fee_pct, cfg.exchange.taker_fee_pct)
        refuse_losing_grids(active.policy, maker_fee, where="strategy" if opts.static else f"policy {active.version}")
    store = open_state(cfg, opts, mode)
    venue = make_venue(cfg, creds, opts.state_db or cfg.live.state_db)
    clock: Clock = FollowingClock(venue.fetch_time_ms, poll_s=0.02) if opts.follow_exchange_clock else WallClock()
    return Runner(cfg, venue, store, active, clock, feed=feed, mode=mode)


def run_until_signalled(runner: Runner) -> Any:
    """Run in this thread; SIGINT/SIGTERM finish the current cycle, persist, and stop."""
    def handler(signum: int, _frame: Any) -> None:
        runner.stop()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)
    try:
        return runner.run()
    finally:
        runner.venue.close()
        runner.store.close()


def _is_loopback(url: str | None) -> bool:
    return bool(url) and any(h in (url or "") for h in ("://127.0.0.1", "://localhost", "://[::1]"))
