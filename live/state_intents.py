"""Order intents in the state DB: persisted before sending, under a deterministic client id (`live.state`).

Active intents are read from the write-through cache (`live.state_cache`); every write below updates
it right after the statement that changed the row, inside the same transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import replace

from live.ids import intent_client_id
from live.records import (
    ACTIVE,
    EXPIRED,
    FILLED,
    FINAL,
    INTENT,
    OPEN,
    REJECTED,
    SENT,
    UNRESOLVED,
    Answer,
    EngineRef,
    Intent,
    intent_from_row,
)
from live.state_core import StoreCore


class IntentBook(StoreCore):
    """The intents half of `live.state.StateStore`."""

    def add_intent(
        self, *, pair: str, side: str, role: str, slot: int, price: float, amount: float, bar_ts: int, now_ms: int,
        engine: EngineRef | None = None,
    ) -> Intent:
        """Persist an order intent (committed on return) and give it its deterministic client id.

        The id depends only on the intent, so re-deciding the same order for the same bar after a
        crash yields the same id: the existing row is returned and nothing is sent twice. A row the
        venue proved it never took (expired: looked up and not found; rejected) is revived under
        the same id, which is safe for the same reason.
        """
        return self.open_intent(pair=pair, side=side, role=role, slot=slot, price=price, amount=amount,
                                bar_ts=bar_ts, now_ms=now_ms, engine=engine)[0]

    def open_intent(
        self, *, pair: str, side: str, role: str, slot: int, price: float, amount: float, bar_ts: int, now_ms: int,
        engine: EngineRef | None = None, status: str = INTENT,
    ) -> tuple[Intent, bool]:
        """`add_intent`, and whether this call wrote the row (new, or revived). A written row gets
        `status`: INTENT, or SENT when the caller sends the order right after this commit (one commit
        fewer per order; both are looked up by client id after a crash)."""
        if status not in UNRESOLVED:
            raise ValueError(f"an intent starts as one of {UNRESOLVED}, not {status!r}")
        e = engine or EngineRef()
        cid = intent_client_id(self.namespace, pair, bar_ts, slot, side, price, amount)
        self._fresh_read()
        hit = self._active().get(cid)
        if hit is not None:
            return hit[1], False  # committed and still active: nothing to write
        with self.tx(durable=self.durable_intents) as db:
            seq = self._take_seq(db)
            # Typed as the columns give them back, so the cached intent equals a re-read row.
            ref = EngineRef(int(e.kind), int(e.ref), int(e.epoch), float(e.aux), bool(e.market))
            it = Intent(cid, pair, side, role, int(slot), ref, float(price), float(amount), int(bar_ts), status, None,
                        0.0, int(now_ms), int(now_ms), None)
            cur = db.execute(
                "INSERT INTO intents(client_id, seq, pair, side, role, slot, order_type, kind, ref, epoch, aux,"
                " price, amount, bar_ts, status, filled, created_ms, updated_ms)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,0,?,?) ON CONFLICT(client_id) DO NOTHING",
                (cid, seq, it.pair, it.side, it.role, it.slot, "market" if it.engine.market else "limit",
                 it.engine.kind, it.engine.ref, it.engine.epoch, it.engine.aux, it.price, it.amount, it.bar_ts,
                 status, it.created_ms, it.updated_ms),
            )
            if cur.rowcount == 0:  # decided before: the row (closed, or revived below) keeps its id and seq
                self._cache.next_seq = seq
                row = db.execute("SELECT * FROM intents WHERE client_id = ?", (cid,)).fetchone()
                if row["status"] not in (EXPIRED, REJECTED) or row["filled"] != 0:
                    return intent_from_row(row), False  # maybe sent before: never written again
                db.execute("UPDATE intents SET status = ?, updated_ms = ?, reason = NULL WHERE client_id = ?",
                           (status, int(now_ms), cid))
                seq, it = row["seq"], replace(intent_from_row(row), status=status, updated_ms=int(now_ms), reason=None)
            self._cache.put(seq, it)
        return it, True

    def _take_seq(self, db: sqlite3.Connection) -> int:
        c = self._cache
        if c.next_seq is None:
            c.next_seq = int(db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM intents").fetchone()[0])
        seq, c.next_seq = c.next_seq, c.next_seq + 1
        return seq

    def _active(self) -> dict[str, tuple[int, Intent]]:
        """The cached active intents, read from the DB when the cache was dropped (call `_fresh` first)."""
        c = self._cache
        if c.active is None:
            rows = self._db.execute(f"SELECT * FROM intents WHERE status IN ({','.join('?' * len(ACTIVE))})", ACTIVE)
            c.active = {r["client_id"]: (int(r["seq"]), intent_from_row(r)) for r in rows}
        return c.active

    def _recache(self, db: sqlite3.Connection, client_id: str) -> None:
        """Re-read one intent into the cache (a write the fast paths do not cover)."""
        row = db.execute("SELECT * FROM intents WHERE client_id = ?", (client_id,)).fetchone()
        if row is None:
            self._active().pop(client_id, None)
        else:
            self._cache.put(int(row["seq"]), intent_from_row(row))

    def set_status(
        self, client_id: str, status: str, now_ms: int, *, venue_order_id: str | None = None,
        reason: str | None = None,
    ) -> None:
        with self.tx() as db:
            self._set_status(db, client_id, status, now_ms, venue_order_id, reason)

    def settle(self, answers: Sequence[Answer], now_ms: int) -> None:
        """Record the venue's answers (`set_status` for each) in one transaction."""
        if not answers:
            return
        with self.tx() as db:
            for client_id, status, venue_order_id in answers:
                self._set_status(db, client_id, status, now_ms, venue_order_id, None)

    def _set_status(
        self, db: sqlite3.Connection, client_id: str, status: str, now_ms: int, venue_order_id: str | None,
        reason: str | None,
    ) -> None:
        vid = None if venue_order_id is None else str(venue_order_id)
        why = None if reason is None else str(reason)
        hit = self._active().get(client_id)  # an active row: not final, so the change applies
        if hit is None:
            row = db.execute("SELECT status FROM intents WHERE client_id = ?", (client_id,)).fetchone()
            if row is None:
                raise KeyError(f"unknown intent {client_id}")
            if row[0] in FINAL and status != row[0]:
                # A final state is final: a late answer (e.g. "open" after we saw it filled) is ignored.
                return
        db.execute(
            "UPDATE intents SET status = ?, updated_ms = ?, venue_order_id = COALESCE(?, venue_order_id),"
            " reason = COALESCE(?, reason) WHERE client_id = ?",
            (status, int(now_ms), vid, why, client_id),
        )
        if hit is None:
            self._recache(db, client_id)
            return
        seq, it = hit
        self._cache.put(seq, replace(it, status=status, updated_ms=int(now_ms),
                                     venue_order_id=it.venue_order_id if vid is None else vid,
                                     reason=it.reason if why is None else why))

    def intent(self, client_id: str) -> Intent | None:
        self._fresh_read()
        hit = self._active().get(client_id)
        if hit is not None:
            return hit[1]
        row = self._db.execute("SELECT * FROM intents WHERE client_id = ?", (client_id,)).fetchone()
        return None if row is None else intent_from_row(row)

    def intents(self, pair: str | None = None, statuses: tuple[str, ...] | None = None) -> list[Intent]:
        if statuses is not None and all(s in ACTIVE for s in statuses):
            self._fresh_read()
            self._active()
            return self._cache.intents(pair, statuses)
        sql, args = "SELECT * FROM intents WHERE 1=1", list[str]()
        if pair is not None:
            sql += " AND pair = ?"
            args.append(pair)
        if statuses is not None:
            sql += f" AND status IN ({','.join('?' * len(statuses))})"
            args.extend(statuses)
        return [intent_from_row(r) for r in self._db.execute(sql + " ORDER BY seq", args)]

    def active_intents(self, pair: str | None = None) -> list[Intent]:
        return self.intents(pair, ACTIVE)

    def intent_by_venue_id(self, pair: str, venue_order_id: str) -> Intent | None:
        if venue_order_id is None:
            return None  # SQL's "= NULL" matches nothing
        self._fresh_read()
        self._active()
        hit = self._cache.by_venue_id(pair, str(venue_order_id))
        if hit is not None:
            return hit
        row = self._db.execute("SELECT * FROM intents WHERE pair = ? AND venue_order_id = ?",
                               (pair, venue_order_id)).fetchone()
        return None if row is None else intent_from_row(row)

    def set_slot(self, client_id: str, slot: int, engine: EngineRef, now_ms: int) -> None:
        """A kept order now carries out another engine order (the engine renumbered it)."""
        with self.tx() as db:
            kind, ref, epoch, aux = int(engine.kind), int(engine.ref), int(engine.epoch), float(engine.aux)
            db.execute("UPDATE intents SET slot = ?, kind = ?, ref = ?, epoch = ?, aux = ?, updated_ms = ?"
                       " WHERE client_id = ?",
                       (int(slot), kind, ref, epoch, aux, int(now_ms), client_id))
            hit = self._active().get(client_id)
            if hit is not None:  # the order type (market) is not renumbered
                seq, it = hit
                self._cache.put(seq, replace(it, slot=int(slot), updated_ms=int(now_ms),
                                             engine=EngineRef(kind, ref, epoch, aux, it.engine.market)))

    def _fill_intent(self, db: sqlite3.Connection, client_id: str, amount: float, now_ms: int) -> None:
        """Add a recorded fill's amount to its intent (inside `record_fill`'s transaction)."""
        hit = self._active().get(client_id)
        if hit is not None:
            before = (hit[1].amount, hit[1].filled, hit[1].status)
        else:
            row = db.execute("SELECT amount, filled, status FROM intents WHERE client_id = ?", (client_id,)).fetchone()
            if row is None:
                return
            before = (row["amount"], row["filled"], row["status"])
        filled = before[1] + amount
        # The lot grid makes "filled == amount" exact up to float noise.
        done = filled >= before[0] * (1 - 1e-9)
        status = FILLED if done else before[2]
        if status in (INTENT, SENT):
            status = OPEN  # a fill proves the venue has it
        db.execute(
            "UPDATE intents SET filled = ?, status = CASE WHEN status IN ('filled','rejected','expired')"
            " THEN status ELSE ? END, updated_ms = ? WHERE client_id = ?",
            (filled, status, now_ms, client_id),
        )
        if hit is None:
            self._recache(db, client_id)  # a final intent (or one the cache never held)
            return
        seq, it = hit  # active, so not one the CASE keeps
        self._cache.put(seq, replace(it, filled=filled, status=status, updated_ms=now_ms))
