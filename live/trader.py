"""One pair's order cycle at each closed base candle: the same engine the backtester runs, fed by the venue.

    candles (incremental) -> sync orders and fills with the venue -> book new fills into the engine
    -> [policy swap at this boundary] -> newest feature row -> raw regime -> engine.on_close
    (risk, hysteresis, switch, desired orders) -> live guards -> diff with resting orders
    -> persist intents, send -> save the engine state with the fills it absorbed (one transaction)

A fill is booked into the engine at the first close after it happened (its timestamp before the
bar's close), exactly when the backtester books it, so a replay makes the backtest's decisions.
After a crash the engine restarts from the last saved close and redoes the cycle: fills not yet
absorbed are booked again from the DB, the decision comes out the same, and the diff with what
really rests on the venue sends only what is missing.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass

import numpy as np

from core.errors import DataError
from exchange.port import Market, Venue
from live import engine_codec
from live.candles import CandleWindow, fetch_closed, fetch_new_rows
from live.executor import ExecReport, Executor
from live.guards import OrderRateLimiter, StaleDataWatchdog, apply_rules, without_entries
from live.logs import log_event
from live.policy_source import ActivePolicy, describe_params
from live.reconcile import DesiredOrder, RestingOrder, diff_orders
from live.state import OPEN, Answer, EngineRef, Fill, Intent, StateStore
from live.sync import OrderSync
from strategies.decide import switch_regime
from strategies.engine import Engine, EngineOrder
from strategies.fill_model import fill_time
from strategies.layout import I_CAND, I_CAND_N, I_DAY_PAUSED, I_KILLED, KIND_NAMES
from strategies.risk import RunSettings


@dataclass
class CycleReport:
    pair: str
    bar_ts: int
    raw_regime: int
    probability: float
    active_regime: int
    decided: bool
    fills_booked: int
    exec: ExecReport
    paused: str | None
    decision_ms: float  # candle in hand -> plan ready, excluding the venue's time


class PairTrader:
    def __init__(self, *, venue: Venue, store: StateStore, market: Market, active: ActivePolicy,
                 settings: RunSettings, bot_name: str, bar_ms: int, limiter: OrderRateLimiter,
                 price_tol_pct: float, amount_tol_pct: float, stale_after_bars: int = 2,
                 full_sync_every_bars: int = 1) -> None:
        self.venue, self.store, self.market = venue, store, market
        self.pair = market.symbol
        self.active = active
        self.settings = settings
        self.bar_ms = bar_ms
        self.tols = (price_tol_pct, amount_tol_pct)
        self.sync = OrderSync(store, venue, self.pair, market.quote, bot_name, bar_ms)
        self.executor = Executor(store, venue, self.sync, market, limiter, bar_ms)
        self.watchdog = StaleDataWatchdog(bar_ms, stale_after_bars)
        self.window = CandleWindow(max(active.warmup_bars, 1) + 8)
        self.engine = Engine(active.policy, market.rules, settings)
        self.last_bar: int | None = None  # open time of the last bar the engine closed
        self._pending: ActivePolicy | None = None
        self._old_version: str | None = None  # the saved policy a restart retires
        self._flags = (0, 0)
        self._predict_error: str | None = None
        self.full_sync_every_bars = full_sync_every_bars
        self._bars_since_sync = 0
        self._active_unsynced: list[Intent] | None = None  # active intents read by _needs_sync, no sync since
        self._extra_json: tuple[Engine, bytes, str, str] | None = None  # the saved params table, serialised
        self._params_json: tuple[ActivePolicy, object, int, str] | None = None  # the regime's params, serialised

    # ---- start-up and restart -----------------------------------------------------------------

    def start(self, now_ms: int, first_bar_ts: int | None = None) -> None:
        """Restore the engine (or start flat), load candle history, settle the DB with the venue."""
        self.store.init_position(self.pair, self.settings.capital_quote, now_ms)
        if self.store.get_meta(f"start_equity:{self.pair}") is None:
            self.store.set_meta(f"start_equity:{self.pair}", repr(self.settings.capital_quote))
        saved = self.store.load_engine(self.pair)
        if saved is not None:
            self.last_bar, blob, extra = saved
            state = engine_codec.decode(blob)
            self.engine = Engine(self.active.policy, self.market.rules, self.settings, state=state)
            if extra.get("policy_version") not in (None, self.active.version) and "params" in extra:
                # The policy changed while the runner was stopped: the engine resumes with the table it
                # traded with, and switches at the first bar exactly like a hot swap.
                old = np.asarray(extra["params"], dtype=np.float64)
                self.engine = Engine(old, self.market.rules, self.settings, state=state)
                self._pending, self._old_version = self.active, str(extra["policy_version"])
                log_event(logging.WARNING, "policy_changed", f"{self.pair}: saved with policy "
                          f"{extra['policy_version']}, starting with {self.active.version}: switching at the first bar",
                          pair=self.pair)
        elif first_bar_ts is not None:
            self.last_bar = first_bar_ts - self.bar_ms  # replay: act from `first_bar_ts` on
        self._flags = self._risk_flags()
        newest = now_ms - now_ms % self.bar_ms - self.bar_ms
        since = min(newest, self.last_bar if self.last_bar is not None else newest) \
            - (self.window.keep_bars - 1) * self.bar_ms
        self.window.extend(fetch_closed(self.venue, self.pair, self.active.base_timeframe, since))
        if self.last_bar is None and self.window.last_ts is not None:
            self.last_bar = self.window.last_ts - self.bar_ms  # first start: act on the newest closed bar
        rep = self.sync.sync(now_ms)
        if rep.changed:
            log_event(logging.INFO, "recovered", f"{self.pair}: settled with the venue after start: "
                      f"{rep.looked_up} intents looked up ({rep.expired} never sent), {rep.closed} closed, "
                      f"{rep.new_fills} fills recorded, {len(rep.orphans_cancelled)} unknown orders cancelled",
                      pair=self.pair)

    def swap_policy(self, new: ActivePolicy) -> None:
        """Take `new` at the next bar boundary (the runner calls this for every pair at once)."""
        self._ensure_history(new.warmup_bars)
        self._pending = new

    def probe(self, candidate: ActivePolicy) -> None:
        """Raise unless `candidate` can predict this pair's newest closed bar."""
        self._ensure_history(candidate.warmup_bars)
        last = self.window.last_ts
        if last is None:
            raise RuntimeError(f"{self.pair}: no candles to validate the policy on")
        raw, prob = candidate.predict(self.pair, self.window.arrays(last, candidate.warmup_bars))
        if raw not in candidate.policy.regimes or not 0.0 <= prob <= 1.0:
            raise ValueError(f"{self.pair}: the policy predicted regime {raw} with probability {prob}, "
                             f"but its table has regimes {sorted(candidate.policy.regimes)}")

    def _ensure_history(self, warmup_bars: int) -> None:
        """Grow the candle window (fetching older candles) to hold `warmup_bars` plus a margin."""
        need = max(warmup_bars, 1) + 8
        if need <= self.window.keep_bars and len(self.window) >= min(need, self.window.keep_bars):
            return
        last = self.window.last_ts
        if last is None:
            return
        bigger = CandleWindow(max(need, self.window.keep_bars))
        df = fetch_closed(self.venue, self.pair, self.active.base_timeframe, last - (need - 1) * self.bar_ms)
        bigger.extend(df[df["ts"] <= last])  # newer bars come in through the cycle, as usual
        if bigger.last_ts == last:
            self.window = bigger

    # ---- the cycle ------------------------------------------------------------------------------

    def run_bar(self, now_ms: int) -> CycleReport | None:
        """Process every closed bar since the last one; None when there is no new candle.

        All or nothing for the engine: when the cycle fails part-way (an exchange error the runner
        will retry), the engine goes back to its state before the attempt, as after a restart, so
        the retry books the same fills once and makes the same decision."""
        saved = (self.engine, self.engine.state.copy(), self.active, self._pending, self._flags)
        try:
            return self._run_bar(now_ms)
        except BaseException:
            engine, state, self.active, self._pending, self._flags = saved
            engine.state = state
            self.engine = engine
            raise

    def _run_bar(self, now_ms: int) -> CycleReport | None:
        if self.window.last_ts is None or self.window.last_ts + 2 * self.bar_ms <= now_ms:
            since = self.window.last_ts + self.bar_ms if self.window.last_ts is not None else now_ms - 4 * self.bar_ms
            self.window.extend_rows(fetch_new_rows(self.venue, self.pair, self.active.base_timeframe, since))
        bars = [b for b in self.window.ts_after(self.last_bar) if b + self.bar_ms <= now_ms]
        self._active_unsynced = None
        sync = self._needs_sync(bars)
        synced: dict[str, str] = {}  # the trades' sync time, committed with the cycle (one commit less)
        if sync == "full":
            self.sync.sync(now_ms)
            self._bars_since_sync = 0
        else:
            if sync == "trades":  # never without bars: the cycle below commits
                synced = self.sync.sync_trades(now_ms, commit=False).meta
            self._bars_since_sync += len(bars)
        stale = self.watchdog.check(self.pair, self.window.last_ts, now_ms)
        if not bars:
            if stale:
                self._pause_entries(stale, now_ms)
            return None
        t0 = time.perf_counter()
        applied: list[str] = []
        raw, prob, decided = -1, 0.0, False
        for b in bars:
            applied += self._book_fills(before_ms=b + self.bar_ms)
            if self._pending is not None:
                self._swap(b)
            raw, prob = self._predict(b)
            row = self.window.row(b)
            assert row is not None
            decided |= self.engine.on_close(b, row[3], raw, prob, high=row[1], low=row[2])
        bar_ts = bars[-1]
        self._note_risk_flags(now_ms)
        desired = self._desired(stale)
        resting = self._resting()
        plan = diff_orders(desired, resting, *self.tols)
        decision_ms = (time.perf_counter() - t0) * 1000.0
        ex = self.executor.execute(plan, bar_ts, now_ms, hold_answers=True)
        self._persist(bar_ts, applied, raw, prob, now_ms, synced, ex.answers)
        return CycleReport(self.pair, bar_ts, raw, prob, self.engine.active_regime, decided, len(applied), ex,
                           stale, decision_ms)

    def _needs_sync(self, bars: list[int]) -> str | None:
        """Which sync the cycle needs: None when the exchange cannot have changed any of our orders
        since the last sync: every order was acknowledged, rests as a limit, and no new candle reached
        its price (the fill model with touch-fills, so a touch counts) — and the last full sync is
        recent enough. "trades" when, that otherwise true, a candle reached an order: a fill is the
        only change, and the trades tell it. "full" for anything else."""
        if not bars or self._bars_since_sync + len(bars) >= self.full_sync_every_bars:
            return "full"
        if self.store.get_meta(self.sync.pending_key) == "1":
            return "full"
        rows = [self.window.row(b) for b in bars]
        need = None
        active = self.store.active_intents(self.pair)
        for it in active:
            if it.status != OPEN or it.engine.market:
                return "full"
            for r in rows:
                if r is None:
                    return "full"
                if need is None and fill_time(it.is_buy, it.price, r[0], r[1], r[2], r[3], True) >= 0.0:
                    need = "trades"
        # Nothing synced: these are still the active intents when the plan is made (`_resting`).
        self._active_unsynced = active if need is None else None
        return need

    def _book_fills(self, before_ms: int) -> list[str]:
        """Book the fills that happened before `before_ms` into the engine, in time order.

        Fills at the very same instant (e.g. two orders both marketable at a bar's open) are booked
        in the engine's table order, the tie-break the backtester uses; the exchange's trade ids
        would order them by order age instead, and the engine's buckets could then differ."""
        pending = [f for f in self.store.fills(self.pair, applied=False) if f.ts_ms < before_ms]
        if not pending:
            return []
        rank = {(o.kind_id, o.ref, o.epoch): i for i, o in enumerate(self.engine.desired_orders())}
        intents = {f.client_id: self.store.intent(f.client_id) for f in pending}
        seq = {f.fill_id: i for i, f in enumerate(pending)}

        def key(f: Fill) -> tuple[int, int, int]:
            e = intents[f.client_id].engine  # type: ignore[union-attr]
            return f.ts_ms, rank.get((e.kind, e.ref, e.epoch), len(rank)), seq[f.fill_id]

        for f in sorted(pending, key=key):
            it = intents[f.client_id]
            assert it is not None
            e = it.engine
            order = EngineOrder(side=it.side, price=it.price, amount=it.amount, kind=KIND_NAMES[e.kind],
                                kind_id=e.kind, ref=e.ref, market=e.market, epoch=e.epoch, aux=e.aux)
            self.engine.apply_fill(order, f.price, f.amount, is_taker=e.market)
        return [f.fill_id for f in sorted(pending, key=key)]

    def _predict(self, bar_ts: int) -> tuple[int, float]:
        try:
            window = self.window.arrays(bar_ts, self.active.warmup_bars) \
                if getattr(self.active, "needs_candles", True) else None
            raw, prob = self.active.predict(self.pair, window)  # type: ignore[arg-type]
            self._predict_error = None
            return int(raw), float(prob)
        except DataError as e:  # a gap or too little history: no prediction, the active regime holds
            if self._predict_error != e.problem:
                log_event(logging.WARNING, "no_prediction", f"{self.pair}: {e.problem}", pair=self.pair)
            self._predict_error = e.problem
            return -1, 0.0

    def _swap(self, bar_ts: int) -> None:
        """Retire the old policy like a regime switch (held inventory keeps its exits), then arm the new."""
        new, self._pending = self._pending, None
        assert new is not None
        s = self.engine.state
        row = self.window.row(bar_ts)
        close = row[3] if row else 0.0
        switch_regime(s.sf, s.si, s.grid, s.legacy, self.engine.params, self.engine.rules_arr, -1, close)
        s.si[I_CAND], s.si[I_CAND_N] = -1, 0
        old, self._old_version = self._old_version or self.active.version, None
        self.active = new
        self.engine = Engine(new.policy, self.market.rules, self.settings, state=s)
        self.store.set_meta("policy_version", new.version)
        log_event(logging.WARNING, "policy_switched", f"{self.pair}: policy {old} -> {new.version} at this bar",
                  pair=self.pair, bar_ts=bar_ts)

    def _desired(self, stale: str | None) -> list[DesiredOrder]:
        out = [
            DesiredOrder(self.pair, o.side, o.price, o.amount, o.slot, o.role, o.market,
                         EngineRef(o.kind_id, o.ref, o.epoch, o.aux, o.market))
            for o in self.engine.desired_orders()
        ]
        if stale:
            out = without_entries(out)
        ok, dropped = apply_rules(out, self.market.rules)
        for d in dropped:
            log_event(logging.INFO, "order_dropped", f"{self.pair}: {d.reason}", pair=self.pair)
        return ok

    def _resting(self) -> list[RestingOrder]:
        active, self._active_unsynced = self._active_unsynced, None
        if active is None:
            active = self.store.active_intents(self.pair)
        return [RestingOrder(i.client_id, i.pair, i.side, i.price, i.remaining, i.slot, i.role)
                for i in active if i.status == OPEN and not i.engine.market]

    def _pause_entries(self, why: str, now_ms: int) -> None:
        """No candle to decide on: keep the exits, cancel resting entries, say why (once per pause; the
        status keeps showing the reason until a candle arrives and the cycle runs again)."""
        if not self.store.get_meta(f"paused:{self.pair}"):
            log_event(logging.WARNING, "entries_paused", why, pair=self.pair)
            self.store.event(now_ms, "warning", "stale_data", why, self.pair)
            self.store.set_meta(f"paused:{self.pair}", why)
        resting = self._resting()
        exits = [DesiredOrder(r.pair, r.side, r.price, r.remaining, r.slot, r.role) for r in resting if r.role == "exit"]
        plan = diff_orders(exits, resting, *self.tols)
        if not plan.empty:
            self.executor.execute(plan, self.last_bar or 0, now_ms)

    def _risk_flags(self) -> tuple[int, int]:
        si = self.engine.state.si
        return int(si[I_KILLED]), int(si[I_DAY_PAUSED])

    def _note_risk_flags(self, now_ms: int) -> None:
        flags = self._risk_flags()
        if flags == self._flags:
            return
        killed, day = flags
        if killed and not self._flags[0]:
            msg = (f"{self.pair}: drawdown kill switch: equity fell {self.settings.max_drawdown_pct:g}% below its "
                   "peak; entries stopped and cancelled" + (", inventory sold at market" if
                                                             self.settings.sell_inventory_on_kill else ""))
            log_event(logging.ERROR, "kill_switch", msg, pair=self.pair)
            self.store.event(now_ms, "error", "kill_switch", msg, self.pair)
        if day != self._flags[1]:
            msg = (f"{self.pair}: daily loss limit ({self.settings.daily_loss_limit_pct:g}%) reached; entries paused "
                   "until the next UTC day" if day else f"{self.pair}: new UTC day; entries allowed again")
            log_event(logging.WARNING, "daily_limit", msg, pair=self.pair)
            self.store.event(now_ms, "warning", "daily_limit", msg, self.pair)
        self._flags = flags

    def _saved_extra(self) -> str:
        """The engine row's extra JSON. The parameter table goes with the state: a restart under another
        policy can retire this one. Serialised again only when the engine or its table changes."""
        c, params = self._extra_json, self.engine.params
        # Compared as bytes (with the shape): equal bytes give equal JSON, NaNs and -0.0 included.
        key = params.tobytes() + repr((params.shape, params.dtype.str)).encode()
        if c is None or c[0] is not self.engine or c[2] != self.active.version or c[1] != key:
            text = json.dumps({"policy_version": self.active.version, "params": params.tolist()}, sort_keys=True)
            c = self._extra_json = (self.engine, key, self.active.version, text)
        return c[3]

    def _regime_params(self, regime: int) -> str:
        """The active regime's parameters as saved with each bar's regime record (JSON), serialised again
        only when the policy or the regime changes (a `Policy` is frozen)."""
        c = self._params_json
        if c is None or c[0] is not self.active or c[1] is not self.active.policy or c[2] != regime:
            text = json.dumps(describe_params(self.active, regime), sort_keys=True, default=float)
            c = self._params_json = (self.active, self.active.policy, regime, text)
        return c[3]

    def _persist(self, bar_ts: int, applied: list[str], raw: int, prob: float, now_ms: int,
                 meta: dict[str, str], answers: list[Answer]) -> None:
        """One commit: the engine state, the fills it absorbed, the venue's answers to this cycle's
        orders (held by the executor until here), the bar's records."""
        active = self.engine.active_regime
        names = self.active.regime_names
        regime = (names.get(raw, str(raw)) if raw >= 0 else "none", prob,
                  names.get(active, str(active)) if active >= 0 else "none",
                  self._regime_params(active), self.active.version)
        row = self.window.row(bar_ts)
        if self.store.get_meta(f"paused:{self.pair}"):
            meta = {**meta, f"paused:{self.pair}": ""}
        extra = self._saved_extra()
        self.store.commit_cycle(self.pair, bar_ts, engine_codec.encode(self.engine.state), extra, applied,
                                regime, row[3] if row else 0.0, bar_ts + self.bar_ms, now_ms, meta or None, answers)
        self.last_bar = bar_ts
