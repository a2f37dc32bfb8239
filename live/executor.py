"""Carry out a reconcile plan on the venue: cancels first, then creates, every step persisted first.

Create: the intent is committed as sent (deterministic client id) -> the venue is asked -> its answer
recorded. Cancel: marked cancelling -> the venue is asked -> its final state recorded. The answers of
a plan are recorded in one transaction after it (the trader's cycle commits them with the engine
state), never before the next request needs them. A crash between any two steps leaves the DB saying
exactly what may have happened, and `live.sync` settles it by client id before the next decision.

Errors: an order the venue refuses (rules, funds) is marked rejected with the venue's reason and not
retried for a while (it would be refused again); a retryable error stops the plan and goes up to the
runner, which backs off and runs the cycle again (the intent in doubt is looked up first).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field

from core.errors import InsufficientFundsError, InvalidOrderError, OrderNotFoundError
from exchange.port import Market, OrderRequest, Venue
from live.crash import crash_point
from live.guards import OrderRateLimiter
from live.logs import log_event
from live.reconcile import DesiredOrder, Plan, RestingOrder
from live.state import CANCELLING, REJECTED, SENT, Answer, EngineRef, StateStore
from live.sync import OrderSync

# Bars an order refused by the venue is not sent again in the same shape.
REJECT_COOLDOWN_BARS = 12


@dataclass
class ExecReport:
    created: int = 0
    cancelled: int = 0
    rejected: int = 0
    deferred: int = 0
    skipped_existing: int = 0
    notes: list[str] = field(default_factory=list)
    # The venue's answers not written yet (`execute(hold_answers=True)`): the caller commits them.
    answers: list[Answer] = field(default_factory=list)


class Executor:
    def __init__(self, store: StateStore, venue: Venue, sync: OrderSync, market: Market,
                 limiter: OrderRateLimiter, bar_ms: int) -> None:
        self.store = store
        self.venue = venue
        self.sync = sync
        self.market = market
        self.pair = market.symbol
        self.limiter = limiter
        self.bar_ms = bar_ms
        self._refused: dict[tuple[int, str, float, float], int] = {}

    def execute(self, plan: Plan, bar_ts: int, now_ms: int, hold_answers: bool = False) -> ExecReport:
        """Cancels, slot changes, creates. Each intent (and each cancel) is committed before its request;
        the venue's answers are recorded in one transaction at the end, or, with `hold_answers`, left in
        `rep.answers` for the caller to commit with its cycle (a crash before that leaves them unrecorded,
        as a crash right after a request does: the next sync settles them by client id)."""
        rep = ExecReport()
        try:
            self._execute(plan, bar_ts, now_ms, rep)
        except BaseException:
            # What the venue did is known: record it before the retry. Should that fail too, the answers
            # are settled by client id like after a crash; the first error is the one to report.
            with contextlib.suppress(Exception):
                self.store.settle(rep.answers, now_ms)
            raise
        if not hold_answers:
            self.store.settle(rep.answers, now_ms)
            rep.answers = []
        return rep

    def _execute(self, plan: Plan, bar_ts: int, now_ms: int, rep: ExecReport) -> None:
        for r in plan.cancel:
            if not self._budget(now_ms, rep):
                break
            self._cancel(r, now_ms, rep)
        for resting, want in plan.keep:
            if resting.slot != want.slot and want.engine is not None:
                self.store.set_slot(resting.client_id, want.slot, want.engine, now_ms)
        for d in plan.create:
            key = (d.slot, d.side, d.price, d.amount)
            refused_at = self._refused.get(key)
            if refused_at is not None and bar_ts - refused_at < REJECT_COOLDOWN_BARS * self.bar_ms:
                continue
            if not self._budget(now_ms, rep):
                break
            self._create(d, bar_ts, now_ms, rep)

    def _budget(self, now_ms: int, rep: ExecReport) -> bool:
        if self.limiter.allow(now_ms):
            return True
        if not rep.deferred:
            msg = (f"{self.pair}: order rate limit reached (risk.max_orders_per_minute = "
                   f"{self.limiter.max_per_minute}); the rest of this bar's changes wait for the next bar")
            log_event(logging.WARNING, "rate_limited", msg, pair=self.pair)
            self.store.event(now_ms, "warning", "rate_limited", msg, self.pair)
        rep.deferred += 1
        return False

    def _cancel(self, r: RestingOrder, now_ms: int, rep: ExecReport) -> None:
        it = self.store.intent(r.client_id)
        assert it is not None
        self.store.set_status(it.client_id, CANCELLING, now_ms)
        self.limiter.record(now_ms)
        try:
            order = self.venue.cancel_order(self.pair, order_id=it.venue_order_id, client_order_id=it.client_id)
        except OrderNotFoundError:
            # The venue never had it (cannot happen for an acked order; kept for a clear record).
            self.store.set_status(it.client_id, REJECTED, now_ms, reason="cancel: unknown to the venue")
            return
        crash_point("after_cancel")
        self.sync.apply_order(self.store.intent(it.client_id) or it, order, now_ms, held=rep.answers)
        rep.cancelled += 1
        log_event(logging.INFO, "order_cancelled", f"{self.pair}: cancelled {it.side} {it.amount:g} @ {it.price:g}",
                  pair=self.pair, client_id=it.client_id, status=order.status)

    def _create(self, d: DesiredOrder, bar_ts: int, now_ms: int, rep: ExecReport) -> None:
        eng = d.engine if isinstance(d.engine, EngineRef) else EngineRef(market=d.market)
        # Committed as "sent" right away: the order goes out after this commit, and an intent or a sent
        # one are settled alike after a crash (looked up by client id), so the separate "sent" commit
        # would only add a state that recovery treats the same.
        it, new = self.store.open_intent(pair=self.pair, side=d.side, role=d.role, slot=d.slot, price=d.price,
                                         amount=d.amount, bar_ts=bar_ts, now_ms=now_ms, engine=eng, status=SENT)
        if not new:
            rep.skipped_existing += 1  # decided and sent before a restart: never twice
            return
        crash_point("after_intent")
        self.limiter.record(now_ms)
        req = OrderRequest(self.pair, d.side, "market" if d.market else "limit", d.amount,  # type: ignore[arg-type]
                           it.client_id, d.price)
        try:
            # Fresh: add_intent just made (or revived after the venue proved it never took it) this
            # client id, and the cycle's sync settled every intent in doubt before deciding.
            order = self.venue.create_order(req, fresh=True)
        except (InvalidOrderError, InsufficientFundsError) as e:
            self.store.set_status(it.client_id, REJECTED, now_ms, reason=e.problem)
            self._refused[(d.slot, d.side, d.price, d.amount)] = bar_ts
            rep.rejected += 1
            log_event(logging.WARNING, "order_rejected", f"{self.pair}: {e.problem}", pair=self.pair,
                      client_id=it.client_id)
            self.store.event(now_ms, "warning", "order_rejected", e.problem, self.pair)
            return
        crash_point("after_answer")
        self.sync.apply_order(it, order, now_ms, held=rep.answers)
        rep.created += 1
        log_event(logging.INFO, "order_sent",
                  f"{self.pair}: {'market ' if d.market else ''}{d.side} {d.amount:g} @ {d.price:g} ({d.role})",
                  pair=self.pair, client_id=it.client_id, order_id=order.id, status=order.status)
