"""Composition root of `aiotrade live`: builds venue, policy, clock and runner from the config and flags.

Kept apart from the CLI so the CLI stays thin (it imports this module lazily) and tests can start
the very same stack in-process. Safety rules enforced here:
- Paper trading unless `--live`; real orders also need API keys and an explicit confirmation.
- A state DB remembers the mode and exchange it was used with; mixing paper and live state (or two
  exchanges) in one DB is refused.
- No champion policy, or one trained for other pairs/timeframes: a clear error before anything starts.
- A grid whose profit per round trip after fees is negative: refused with real orders, warned about in
  paper trading (`GridFeeCheck`), at start and for every policy the watcher swaps in later. An
  ATR-sized grid (`grid.range_atr_mult` > 0) is judged with the typical ATR of the pair's recent
  candles, as the backtest's warning judges it; the ATR at each later arming is not re-checked.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.config import Config
from core.errors import AIOTradeError, ConfigError
from core.market_rules import venue_fees
from core.secrets import Credentials, load_credentials
from core.timeframes import timeframe_ms
from exchange.ccxt_venue import CcxtVenue
from exchange.paper import PaperVenue
from exchange.port import Venue
from live.candles import fetch_closed
from live.clock import Clock, FollowingClock, WallClock
from live.logs import log_event
from live.policy_source import ActivePolicy, StaticPolicy, check_compatible
from live.runner import PolicyFeed, Runner
from live.state import StateStore
from strategies.grid_profit import has_atr_grid, losing_grids, losing_grids_error, typical_atr_frac

# An ATR-sized grid's step depends on the market. Its fee check takes the median ATR over about this
# many closed base candles of each pair (the backtest's warning takes it over the backtest's span).
TYPICAL_ATR_BARS = 1000


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
    store = StateStore(path, namespace=cfg.live.bot_name, exclusive=True)  # one runner per state DB
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


@dataclass(frozen=True)
class GridFeeCheck:
    """Grids of a policy whose profit per round trip after fees is negative: with real orders
    (`mode == "live"`) a ConfigError naming the parameter and the fix, as Binance's grid bot refuses
    them; otherwise one warning each, and trading goes on. Run at start and, through the watcher
    (`ChampionWatcher.grid_check`), on every policy before it is swapped in: a raise refuses it.

    A step or fixed range is judged with the configured fees. An ATR-sized range is judged per pair
    with the median ATR over its last `TYPICAL_ATR_BARS` closed candles (fetched from the venue) and
    its market's maker fee and tick; the ATR when the grid actually arms later is not checked again."""

    cfg: Config
    venue: Venue
    clock: Clock
    mode: str

    def __call__(self, active: ActivePolicy) -> None:
        where = "strategy" if isinstance(active, StaticPolicy) else f"policy {active.version}"
        ex = self.cfg.exchange
        found = losing_grids(active.policy, venue_fees(ex.name, ex.maker_fee_pct, ex.taker_fee_pct)[0], where)
        if has_atr_grid(active.policy) and not (found and self.mode == "live"):
            found += self._atr_findings(active, where)
        if found and self.mode == "live":
            raise losing_grids_error(found)
        for problem, fix in found:
            log_event(logging.WARNING, "grid_below_fees", f"{problem}; {fix} (paper trading goes on; "
                      "`aiotrade live --live` refuses this grid)", policy_version=active.version)

    def _atr_findings(self, active: ActivePolicy, where: str) -> list[tuple[str, str]]:
        tf = self.cfg.market.base_timeframe
        found = []
        try:
            markets = self.venue.load_markets()
            since_ms = self.clock.now_ms() - TYPICAL_ATR_BARS * timeframe_ms(tf)
            for pair in (p for p in self.cfg.market.pairs if p in markets):  # an unlisted pair: the runner says so
                df = fetch_closed(self.venue, pair, tf, since_ms)
                if df.empty:
                    log_event(logging.WARNING, "grid_fees_unchecked", f"{pair}: no {tf} candles to estimate the "
                              "ATR of the ATR-sized grid; its profit per round trip after fees is not checked", pair=pair)
                    continue
                hlc = [df[k].to_numpy(dtype="float64") for k in ("high", "low", "close")]
                rules = markets[pair].rules
                found += [(f"{pair}: {p}", f) for p, f in losing_grids(
                    active.policy, rules.maker_fee, where, float(hlc[2][-1]), lambda n, h=hlc: typical_atr_frac(*h, n),
                    rules.tick_size, only_atr=True)]
        except AIOTradeError as e:
            if self.mode != "live":
                log_event(logging.WARNING, "grid_fees_unchecked", f"the ATR-sized grid's profit per round trip "
                          f"after fees is not checked: {e.problem}")
                return found
            raise ConfigError(f"cannot check the ATR-sized grid of {where} against the fees: {e.problem}",
                              f"{e.fix or 'check the connection to the exchange'}; then start again") from e
        return found


def build_runner(cfg: Config, opts: LiveOptions, confirm: Callable[[str], bool] | None = None) -> Runner:
    creds = check_live_allowed(cfg, opts, confirm)
    mode = "live" if creds is not None else "paper"
    active, feed = load_policy(cfg, opts)
    opened: list[Any] = [feed]  # closed again when the start is refused
    try:
        venue = make_venue(cfg, creds, opts.state_db or cfg.live.state_db)  # real orders: no I/O yet
        opened.append(venue)
        clock: Clock = FollowingClock(venue.fetch_time_ms, poll_s=0.02) if opts.follow_exchange_clock else WallClock()
        check = GridFeeCheck(cfg, venue, clock, mode)
        check(active)  # real orders: a losing grid is refused before the state DB is opened
        store = open_state(cfg, opts, mode)
    except BaseException:
        for thing in reversed(opened):
            thing.close()
        raise
    if not opts.static:  # the champion watcher: each policy it swaps in gets the same check first
        feed.grid_check = check  # type: ignore[attr-defined]
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
