"""The live loop: at every closed base candle, every pair's cycle; retries, policy swaps, clean shutdown.

    runner = Runner(cfg, venue, store, policy, clock)
    runner.run()          # until stop() (SIGINT/SIGTERM), or `until_ms` in replay

- Start: markets are loaded and each pair settles its DB with the venue before anything is sent
  (`PairTrader.start`); an unreachable exchange is retried with back-off and a clear status line,
  never a crash.
- Each bar: wait for its close (+ `live.candle_delay_s`), take a validated new policy from the watcher
  (all pairs switch at this same boundary), run every pair's cycle. A retryable exchange error
  backs off (`live.retry_initial_s` doubling to `live.retry_max_s`) and the cycle runs again; a fatal
  one (keys rejected, ...) stops the runner with its message. An unexpected error in one pair is
  logged with its traceback and retried; the same error `MAX_SAME_FAILURES` times in a row stops the
  runner loudly instead of looping forever.
- Stop: the cycle in progress finishes and is persisted; with `live.cancel_orders_on_exit` this
  bot's open orders are cancelled; the state DB records that the runner stopped.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.config import Config
from core.errors import AIOTradeError, FatalExchangeError, RetryableExchangeError
from core.timeframes import timeframe_ms
from exchange.port import Venue
from live.clock import Clock, floor_to_bar
from live.guards import OrderRateLimiter
from live.logs import log_event
from live.policy_source import ActivePolicy
from live.state import ACTIVE, CANCELLED, CANCELLING, StateStore
from live.trader import CycleReport, PairTrader
from strategies.risk import RunSettings

MAX_SAME_FAILURES = 5


class RepeatedFailure(AIOTradeError):
    """The same unexpected error kept coming back: the runner stops instead of looping."""
# A bar's candle may be published a moment after the close: ask again this often before giving up
# on the bar (the stale-data watchdog pauses entries when candles stay away for two bars).
CANDLE_POLLS = 4
CANDLE_POLL_S = 2.0


class PolicyFeed:
    """What the runner asks the watcher each bar: a new, validated policy or None. The runner sets
    `probe`: it raises when a candidate policy cannot predict on the pairs' current candles."""

    probe: Callable[[ActivePolicy], None] | None = None

    def poll(self, now_ms: int) -> ActivePolicy | None:
        return None

    def take_refusals(self) -> list[tuple[str, str]]:
        """(version, why) of each policy refused since the last call, for the state DB's events."""
        return []

    def close(self) -> None:
        pass


@dataclass
class RunStats:
    bars: int = 0
    cycles: list[CycleReport] = field(default_factory=list)
    retries: int = 0
    keep_reports: bool = False


class Runner:
    def __init__(self, cfg: Config, venue: Venue, store: StateStore, active: ActivePolicy, clock: Clock, *,
                 feed: PolicyFeed | None = None, stop: threading.Event | None = None,
                 first_bar_ts: int | None = None, until_ms: int | None = None, mode: str = "paper",
                 on_bar: Callable[[int, list[CycleReport]], None] | None = None, keep_reports: bool = False,
                 candle_polls: int = CANDLE_POLLS) -> None:
        self.cfg = cfg
        self.venue = venue
        self.store = store
        self.active = active
        self.clock = clock
        self.feed = feed or PolicyFeed()
        self.stop_event = stop or threading.Event()
        self.first_bar_ts = first_bar_ts
        self.until_ms = until_ms
        self.mode = mode
        self.on_bar = on_bar
        self.bar_ms = timeframe_ms(cfg.market.base_timeframe)
        self.limiter = OrderRateLimiter(cfg.risk.max_orders_per_minute)
        self.traders: list[PairTrader] = []
        self.stats = RunStats(keep_reports=keep_reports)
        self._failures: dict[str, tuple[str, int]] = {}
        self._started_close_ms = 0
        self._state = ""
        self.feed.probe = self._probe
        self.candle_polls = max(1, candle_polls)

    def stop(self) -> None:
        self.stop_event.set()

    # ---- the loop -------------------------------------------------------------------------------

    def run(self) -> RunStats:
        self._status("starting")
        self.store.set_meta("policy_version", self.active.version)
        self.store.set_meta("mode", self.mode)
        self.store.set_meta("exchange", self.cfg.exchange.name)
        self.store.set_meta("started_ms", str(self.clock.now_ms()))
        try:
            if not self._retrying("starting", self._start):
                return self.stats
            done_ms = self._started_close_ms  # never re-read "now" here: the clock may have moved on
            while not self.stop_event.is_set():
                # The next close after the one processed, never one computed from "now": the clock may
                # have moved on while the cycle ran. More than a bar behind, jump to the newest close
                # (each pair's cycle catches up every bar that closed meanwhile).
                close_ms = max(done_ms + self.bar_ms, floor_to_bar(self.clock.now_ms(), self.bar_ms))
                if self.until_ms is not None and close_ms > self.until_ms:
                    break
                wake = close_ms + int(self.cfg.live.candle_delay_s * 1000)
                if not self.clock.sleep_until(wake, self.stop_event):
                    break
                self._bar(close_ms)
                done_ms = close_ms
        finally:
            self._shutdown()
        return self.stats

    def run_pending_bar(self) -> list[CycleReport]:
        """One cycle for the bars already closed (a restart acts on the current bar at once)."""
        close_ms = floor_to_bar(self.clock.now_ms(), self.bar_ms)
        self._started_close_ms = close_ms
        return self._bar(close_ms)

    def _start(self) -> None:
        markets = self.venue.load_markets()
        n = len(self.cfg.market.pairs)
        settings = RunSettings.from_config(self.cfg, n_pairs=n)
        self.traders = []
        for pair in self.cfg.market.pairs:
            if pair not in markets:
                raise FatalExchangeError(f"{self.venue.name} does not list {pair}", "fix market.pairs")
            t = PairTrader(venue=self.venue, store=self.store, market=markets[pair], active=self.active,
                           settings=settings, bot_name=self.cfg.live.bot_name, bar_ms=self.bar_ms,
                           limiter=self.limiter, price_tol_pct=self.cfg.live.price_tolerance_pct,
                           amount_tol_pct=self.cfg.live.amount_tolerance_pct,
                           stale_after_bars=self.cfg.live.stale_after_bars,
                           full_sync_every_bars=self.cfg.live.full_sync_every_bars)
            t.start(self.clock.now_ms(), self.first_bar_ts)
            self.traders.append(t)
        self._status("running")
        # A restart mid-bar acts on the bars that closed while it was down right away.
        self.run_pending_bar()

    def _probe(self, candidate: ActivePolicy) -> None:
        """Raise unless `candidate` predicts on every pair's newest candles (fetching more history
        first when it needs a longer warm-up than the current policy)."""
        for t in self.traders:
            t.probe(candidate)

    def _bar(self, close_ms: int) -> list[CycleReport]:
        new = self.feed.poll(self.clock.now_ms())
        for version, why in self.feed.take_refusals():  # `aiotrade status` shows it, not only the log
            self.store.event(self.clock.now_ms(), "error", "policy_refused",
                             f"policy {version} refused, {self.active.version} keeps trading: {why}")
        if new is not None:
            self.active = new
            for t in self.traders:
                t.swap_policy(new)
        reports: list[CycleReport] = []
        waiting = list(self.traders)
        for attempt in range(self.candle_polls):
            missing = []
            for t in waiting:
                if self.stop_event.is_set() and reports:
                    break  # finish the pair in progress only
                rep = self._retrying(f"{t.pair} cycle", lambda t=t: t.run_bar(self.clock.now_ms()))
                if isinstance(rep, CycleReport):
                    reports.append(rep)
                elif t.last_bar is not None and t.last_bar + 2 * self.bar_ms <= close_ms:
                    missing.append(t)  # the bar's candle is not published yet
            waiting = missing
            if not waiting or self.stop_event.is_set() or attempt == self.candle_polls - 1:
                break
            self.stop_event.wait(CANDLE_POLL_S)
        if reports:
            self.stats.bars += 1
            if self.stats.keep_reports:
                self.stats.cycles.extend(reports)
        self.store.set_metas({"heartbeat_ms": str(int(time.time() * 1000)), "last_close_ms": str(close_ms)})
        if self.on_bar is not None:
            self.on_bar(close_ms, reports)
        return reports

    # ---- errors ---------------------------------------------------------------------------------

    def _retrying(self, what: str, fn: Callable[[], Any]) -> Any:
        """Run `fn` until it succeeds; retryable errors back off, fatal ones stop the runner."""
        delay = self.cfg.live.retry_initial_s
        while not self.stop_event.is_set():
            try:
                out = fn()
                self._failures.pop(what, None)
                if self._state != "running" and self.traders:
                    self._status("running")
                return out if out is not None else True
            except RetryableExchangeError as e:
                wait = max(delay, e.retry_after_s or 0.0)
                self.stats.retries += 1
                self._status(f"retrying {what} in {wait:.0f}s: {e.problem}")
                log_event(logging.WARNING, "retry", f"{what}: {e.problem}; retrying in {wait:.1f}s", wait_s=wait)
                self.stop_event.wait(wait)
                delay = min(delay * 2, self.cfg.live.retry_max_s)
            except (FatalExchangeError, RepeatedFailure):
                if not self._state.startswith("stopped"):
                    self._status(f"stopped: fatal exchange error during {what}")
                raise
            except Exception as e:  # noqa: BLE001 - a bug must not crash-loop silently: count and say it
                sig = f"{type(e).__name__}: {e}"
                prev, n = self._failures.get(what, ("", 0))
                n = n + 1 if prev == sig else 1
                self._failures[what] = (sig, n)
                log_event(logging.ERROR, "cycle_error", f"{what} failed ({n}/{MAX_SAME_FAILURES}): {sig}",
                          traceback=traceback.format_exc())
                self.store.event(self.clock.now_ms(), "error", "cycle_error", f"{what}: {sig}")
                if n >= MAX_SAME_FAILURES:
                    self._status(f"stopped: {what} failed {n} times in a row: {sig}")
                    raise RepeatedFailure(
                        f"the runner stopped: {what} failed {n} times in a row with {sig}",
                        "the log has the traceback of each attempt (event cycle_error); fix the cause, then "
                        "restart: the state DB and the exchange are settled again before anything is sent",
                    ) from e
                self.stop_event.wait(delay)
                delay = min(delay * 2, self.cfg.live.retry_max_s)
        return None

    def _status(self, text: str) -> None:
        self._state = text
        self.store.set_metas({"runner_state": text, "heartbeat_ms": str(int(time.time() * 1000))})

    def _shutdown(self) -> None:
        self.feed.close()
        if self.cfg.live.cancel_orders_on_exit and self.traders:
            self._cancel_all()
        if not self._state.startswith("stopped"):
            self._status("stopped")
        log_event(logging.INFO, "stopped", f"runner stopped after {self.stats.bars} bars")

    def _cancel_all(self) -> None:
        now = self.clock.now_ms()
        for t in self.traders:
            for it in self.store.intents(t.pair, ACTIVE):
                try:
                    self.store.set_status(it.client_id, CANCELLING, now)
                    order = self.venue.cancel_order(t.pair, order_id=it.venue_order_id, client_order_id=it.client_id)
                    t.sync.apply_order(it, order, now)
                except Exception as e:  # noqa: BLE001 - best effort on the way out; the DB says what is left
                    log_event(logging.WARNING, "cancel_on_exit_failed", f"{t.pair}: {it.client_id}: {e}")
            left = [i for i in self.store.intents(t.pair, ACTIVE) if i.status != CANCELLED]
            log_event(logging.INFO, "cancelled_on_exit", f"{t.pair}: open orders cancelled on exit "
                      f"({len(left)} still active)", pair=t.pair)
