"""Make the state DB true to the venue: intents resolved by client id, open orders matched, fills recorded.

The runner calls `OrderSync.sync()` at the start of every cycle and, after a restart, before it does
anything else (`recover`). Rules, so that nothing is duplicated and nothing is forgotten:

1. An intent we may have sent but never heard back about (status intent/sent) is looked up on the
   venue by its client order id. Found: it takes the venue's status and order id. Not found: the
   venue never took it (expired); the engine will decide again and the same id may be reused.
2. Our orders on the venue (client id with this bot's prefix) are matched with the DB's. One the DB
   does not know cannot come from this runner (intents are committed before sending): it is
   cancelled and reported, never adopted blindly.
3. An intent the DB thinks is open but the venue no longer lists is closed: its trades are fetched;
   when they do not account for its whole amount, the order itself is asked for its final status.
4. Trades are fetched from the previous sync's time minus two bars (a fill becomes visible when its
   bar closes) up to now, however long the runner was away (the adapter walks the venue's query
   windows), and recorded by trade id, so overlapping fetches are harmless. The sync time is saved
   only after the trades before it are recorded.
Orders that are not ours (no prefix) are never touched.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from core.errors import FatalExchangeError, OrderNotFoundError
from exchange.port import CANCELED, CLOSED, EXPIRED, OPEN, REJECTED, Order, Trade, Venue
from live.ids import is_ours
from live.logs import log_event
from live.state import (
    CANCELLED,
    FILLED,
    UNRESOLVED,
    Answer,
    Fill,
    Intent,
    StateStore,
)
from live.state import EXPIRED as S_EXPIRED
from live.state import OPEN as S_OPEN
from live.state import REJECTED as S_REJECTED

# Trades per page asked from the venue adapter, which pages the venue itself as its rules require.
_TRADES_PAGE = 1000
_FINAL_FROM_VENUE = {CLOSED: FILLED, CANCELED: CANCELLED, REJECTED: S_REJECTED, EXPIRED: CANCELLED}


@dataclass
class SyncReport:
    looked_up: int = 0
    expired: int = 0
    closed: int = 0
    new_fills: int = 0
    orphans_cancelled: list[str] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)  # to be committed by the caller (`sync_trades`)

    @property
    def changed(self) -> bool:
        return bool(self.looked_up or self.closed or self.new_fills or self.orphans_cancelled)


class OrderSync:
    def __init__(self, store: StateStore, venue: Venue, pair: str, quote_asset: str, bot_name: str,
                 bar_ms: int) -> None:
        self.store = store
        self.venue = venue
        self.pair = pair
        self.quote = quote_asset
        self.bot_name = bot_name
        self.bar_ms = bar_ms

    def sync(self, now_ms: int) -> SyncReport:
        rep = SyncReport()
        had_active = bool(self.store.active_intents(self.pair))
        self._resolve_unresolved(now_ms, rep)
        open_orders = {o.client_order_id: o for o in self.venue.fetch_open_orders(self.pair)
                       if is_ours(o.client_order_id, self.bot_name)}
        self._cancel_orphans(open_orders, now_ms, rep)
        if had_active or self.store.get_meta(self.pending_key) == "1":
            self._record_trades(now_ms, rep)
        self._close_vanished(open_orders, now_ms, rep)
        if not self.store.intents(self.pair, UNRESOLVED):
            # With an intent still in doubt its trades could not be matched yet: keep the window open.
            self.store.set_metas({self.pending_key: "0", self._synced_key: str(now_ms)})
        return rep

    def sync_trades(self, now_ms: int, commit: bool = True) -> SyncReport:
        """Only rule 4: record the trades since the last sync. Enough when every active intent is an
        acknowledged resting limit order and the only change the venue can have made is a fill (a
        candle reached one): a fill closes its intent as soon as the trades cover its amount. The
        caller still runs a full `sync` periodically (`live.full_sync_every_bars`) for anything else
        (orders the exchange cancelled on its own, orphans).

        `commit=False`: the new sync time is left in `rep.meta` for the caller to commit with its
        cycle. Saved later (or lost in a crash) it only makes the next fetch overlap more, and trades
        are recorded by id; nothing else writes it in between (only a sync does)."""
        rep = SyncReport()
        self._record_trades(now_ms, rep)
        rep.meta = {self._synced_key: str(now_ms)}
        if commit:
            self.store.set_metas(rep.meta)
        return rep

    # ---- 1. intents in doubt --------------------------------------------------------------------

    def _resolve_unresolved(self, now_ms: int, rep: SyncReport) -> None:
        for it in self.store.intents(self.pair, UNRESOLVED):
            rep.looked_up += 1
            try:
                order = self.venue.fetch_order(self.pair, client_order_id=it.client_id)
            except OrderNotFoundError:
                self.store.set_status(it.client_id, S_EXPIRED, now_ms, reason="not found on the venue by client id")
                rep.expired += 1
                log_event(logging.INFO, "intent_expired", f"{self.pair}: intent {it.client_id} never reached "
                          "the venue; it will be decided again", pair=self.pair, client_id=it.client_id)
                continue
            self.apply_order(it, order, now_ms)
            log_event(logging.INFO, "intent_resolved", f"{self.pair}: intent {it.client_id} found on the venue "
                      f"({order.status})", pair=self.pair, client_id=it.client_id, order_id=order.id)

    def apply_order(self, it: Intent, order: Order, now_ms: int, held: list[Answer] | None = None) -> None:
        """Take the venue's word on one of our orders (an answer to create/cancel, or a lookup).

        `held`: append the new status there instead of writing it; the caller commits it later
        (`StateStore.settle`, or with the cycle: `commit_cycle`). Until then the DB says the order may
        have been sent (or cancelled), the very state of a crash before the answer was recorded, which
        the next sync settles by client id."""
        # An order still open after a cancel whose answer was lost is open: the next diff decides again.
        status = S_OPEN if order.status == OPEN else _FINAL_FROM_VENUE.get(order.status, CANCELLED)
        if status == FILLED and self._recorded_fill(it) < order.filled * (1 - 1e-9):
            # Filled on the venue but its trades are not booked yet: stay open until they are.
            status = S_OPEN
            self.store.set_meta(self.pending_key, "1")
        elif status == CANCELLED and order.filled > self._recorded_fill(it) * (1 + 1e-9) + 1e-12:
            self.store.set_meta(self.pending_key, "1")  # partly filled before the cancel
        if held is None:
            self.store.set_status(it.client_id, status, now_ms, venue_order_id=order.id)
        else:
            held.append((it.client_id, status, order.id))

    # ---- 2. orders we did not expect --------------------------------------------------------------

    def _cancel_orphans(self, open_orders: dict[str | None, Order], now_ms: int, rep: SyncReport) -> None:
        for cid, order in open_orders.items():
            if cid is None or self.store.intent(cid) is not None:
                continue
            log_event(logging.ERROR, "orphan_order",
                      f"{self.pair}: open order {order.id} ({cid}) carries this bot's prefix but is not in the "
                      "state DB; cancelling it (two bots with the same live.bot_name on one account, or a "
                      "replaced state DB?)", pair=self.pair, client_id=cid)
            try:
                self.venue.cancel_order(self.pair, order_id=order.id)
            except OrderNotFoundError:
                pass
            self.store.event(now_ms, "error", "orphan_order", f"cancelled unknown order {order.id} ({cid})", self.pair)
            rep.orphans_cancelled.append(cid)

    # ---- 3./4. trades and closed orders -----------------------------------------------------------

    def _record_trades(self, now_ms: int, rep: SyncReport) -> None:
        last = self.store.get_meta(self._synced_key)
        oldest_active = min((i.created_ms for i in self.store.active_intents(self.pair)), default=now_ms)
        since = (int(last) if last else oldest_active) - 2 * self.bar_ms
        self._fetch_and_record(since, now_ms, rep, save_progress=True)

    def _fetch_and_record(self, since: int, now_ms: int, rep: SyncReport, save_progress: bool) -> None:
        """Record every trade from `since` on, a page (the oldest `_TRADES_PAGE`) at a time.

        The venue adapter makes each page complete whatever the venue's query windows (Binance: 24 h
        and 1000 trades per request; Bitget: 100 per request), so a runner that was down for days
        still sees every fill. After each full page is recorded the sync time moves up to its last
        trade (durably, so a crash in a long catch-up resumes there); never past an intent in doubt,
        whose trades cannot be matched yet."""
        while True:
            trades = self.venue.fetch_trades(self.pair, since_ms=max(0, since), limit=_TRADES_PAGE)
            for t in trades:
                rep.new_fills += self._record_trade(t, now_ms)
            if len(trades) < _TRADES_PAGE:
                return
            if trades[-1].ts_ms <= since:
                # More than a page of trades in one millisecond: paging by time cannot advance.
                raise FatalExchangeError(
                    f"{self.venue.name}: more than {_TRADES_PAGE} {self.pair} trades at {since} ms; "
                    "cannot page past them", "report it with the log; nothing was skipped")
            since = trades[-1].ts_ms  # the overlap is dropped by trade id
            if save_progress and not self.store.intents(self.pair, UNRESOLVED):
                last = self.store.get_meta(self._synced_key)
                cursor = since + 2 * self.bar_ms  # the next fetch starts at `since` again
                if last is None or int(last) < cursor <= now_ms:
                    self.store.set_meta(self._synced_key, str(cursor))

    def _record_trade(self, t: Trade, now_ms: int) -> int:
        fill_id = f"{t.order_id}:{t.id}"
        if self.store.has_fill(fill_id):
            return 0  # fetches overlap: most trades seen are recorded already (their intent is long closed)
        it = self.store.intent_by_venue_id(self.pair, t.order_id)
        if it is None:
            return 0  # not one of ours (manual trading on the same account)
        fee_asset = t.fee_asset or (self.quote if t.side == "sell" else self.pair.split("/")[0])
        fill = Fill(fill_id, it.client_id, self.pair, t.side, t.price, t.amount, t.fee_cost, fee_asset, t.ts_ms)
        if not self.store.record_fill(fill, self.quote, now_ms):
            return 0
        log_event(logging.INFO, "fill", f"{self.pair}: {t.side} {t.amount:g} @ {t.price:g}", pair=self.pair,
                  client_id=it.client_id, trade_id=t.id, fee=t.fee_cost, fee_asset=fee_asset)
        return 1

    def _close_vanished(self, open_orders: dict[str | None, Order], now_ms: int, rep: SyncReport) -> None:
        for it in self.store.active_intents(self.pair):
            if it.status in UNRESOLVED:
                continue  # only when a lookup failed with a retryable error; tried again next sync
            if it.client_id in open_orders:
                order = open_orders[it.client_id]
                if it.status != S_OPEN or order.filled > it.filled + 1e-12:
                    self.apply_order(it, order, now_ms)
                continue
            rep.closed += 1
            fresh = self.store.intent(it.client_id)
            assert fresh is not None
            if fresh.status == FILLED:
                continue  # its trades filled it during this sync
            order = self.venue.fetch_order(self.pair, order_id=it.venue_order_id, client_order_id=it.client_id) \
                if it.venue_order_id else self.venue.fetch_order(self.pair, client_order_id=it.client_id)
            if order.is_open:  # listed late (venue lag): leave it for the next sync
                continue
            if order.filled > fresh.filled * (1 + 1e-9) + 1e-12:
                self._backfill_trades(fresh, order, now_ms, rep)
                fresh = self.store.intent(it.client_id) or fresh
            self.apply_order(fresh, order, now_ms)

    def _backfill_trades(self, it: Intent, order: Order, now_ms: int, rep: SyncReport) -> None:
        """The venue reports more filled than we booked: fetch trades from the order's creation on."""
        since = min(it.created_ms, order.ts_ms or it.created_ms) - 2 * self.bar_ms
        self._fetch_and_record(since, now_ms, rep, save_progress=False)

    def _recorded_fill(self, it: Intent) -> float:
        fresh = self.store.intent(it.client_id)
        return fresh.filled if fresh else it.filled

    @property
    def pending_key(self) -> str:
        return f"trades_pending:{self.pair}"

    @property
    def _synced_key(self) -> str:
        return f"trades_synced_ms:{self.pair}"
