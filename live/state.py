"""Persistent runner state in SQLite (WAL): order intents, fills, positions, equity, regimes, engine state.

Why SQLite in WAL mode: one file, atomic transactions, crash-safe (a SIGKILL mid-write leaves the last
committed state), and `aiotrade status` can read while the runner writes. Every order is written as an
*intent* (with its idempotent client order id) and committed BEFORE it is sent; its lifecycle is

    intent -> sent -> open -> filled | cancelled | rejected          (expired: never reached the venue)
                        \\-> cancelling -> cancelled | filled

(the executor commits a new intent as "sent" at once: it sends the order right after that commit, and
recovery settles both alike, by client id). Fills are keyed by the venue's trade id, so recording one
twice is a no-op. Positions are derived from fills in the same transaction that records them. The
engine state per pair is saved together with the "applied" mark of the fills it has absorbed, so after
a crash every fill is applied exactly once.
Time is always passed in (`now_ms`): the runner's clock is injectable.

What the cycle reads every bar (active intents, meta, unapplied fills) is served from a write-through
cache (`live.state_cache`, which says why it cannot go stale); the DB stays the source of truth.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from live.records import (
    ACTIVE,
    CANCELLED,
    CANCELLING,
    EXPIRED,
    FILLED,
    FINAL,
    INTENT,
    OPEN,
    PUT_ENGINE,
    PUT_META,
    REJECTED,
    SCHEMA_VERSION,
    SENT,
    UNRESOLVED,
    Answer,
    EngineRef,
    Fill,
    Intent,
    Position,
    book_fill,
    fill_from_row,
    position_from_row,
)
from live.state_intents import IntentBook

__all__ = [
    "ACTIVE", "CANCELLED", "CANCELLING", "EXPIRED", "FILLED", "FINAL", "INTENT", "OPEN", "REJECTED", "SCHEMA_VERSION",
    "SENT", "UNRESOLVED", "Answer", "EngineRef", "Fill", "Intent", "Position", "StateStore",
]


class StateStore(IntentBook):
    """One runner's state. `namespace` makes client ids unique per bot (two bots, one account).
    Connection, transactions and meta: `live.state_core`; intents: `live.state_intents`."""

    # ---- fills and positions --------------------------------------------------------------------

    def init_position(self, pair: str, cash_quote: float, now_ms: int) -> Position:
        """Create the pair's book with its allocated cash; a no-op when it exists (restart)."""
        with self.tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO positions VALUES (?, ?, 0, 0, 0, 0, 0, ?)", (pair, cash_quote, now_ms)
            )
            self._cache.positions.pop(pair, None)  # read back as stored
        pos = self.position(pair)
        assert pos is not None
        return pos

    def record_fill(self, fill: Fill, quote_asset: str, now_ms: int) -> bool:
        """Record one venue trade and update the position atomically. False if it was already known."""
        # Trade fetches overlap (a fill shows when its bar closes): most trades seen are known ones, and
        # a fill is never deleted, so a known one needs no transaction.
        if self.has_fill(fill.fill_id):
            return False
        f = Fill(str(fill.fill_id), str(fill.client_id), str(fill.pair), str(fill.side), float(fill.price),
                 float(fill.amount), float(fill.fee), str(fill.fee_asset), int(fill.ts_ms))
        with self.tx() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO fills(fill_id, client_id, pair, side, price, amount, fee, fee_asset, ts_ms)"
                " VALUES (?,?,?,?,?,?,?,?,?)",
                (f.fill_id, f.client_id, f.pair, f.side, f.price, f.amount, f.fee, f.fee_asset, f.ts_ms),
            )
            if cur.rowcount == 0:
                return False
            assert cur.lastrowid is not None
            self._cache.add_unapplied(f.ts_ms, cur.lastrowid, f)
            self._apply_to_position(db, f, quote_asset, now_ms)
            self._fill_intent(db, f.client_id, f.amount, int(now_ms))
        return True

    def has_fill(self, fill_id: str) -> bool:
        return self._db.execute("SELECT 1 FROM fills WHERE fill_id = ?", (fill_id,)).fetchone() is not None

    def _apply_to_position(self, db: sqlite3.Connection, fill: Fill, quote_asset: str, now_ms: int) -> None:
        before = self._position(fill.pair)
        if before is None:
            raise KeyError(f"no position for {fill.pair}: call init_position first")
        pos = book_fill(before, fill, quote_asset)
        db.execute(
            "UPDATE positions SET cash_quote=?, base=?, cost_quote=?, realized_pnl_quote=?, fees_quote=?,"
            " n_fills = ?, updated_ms=? WHERE pair = ?",
            (pos.cash_quote, pos.base, pos.cost_quote, pos.realized_pnl_quote, pos.fees_quote, pos.n_fills, now_ms,
             fill.pair),
        )
        self._cache.positions[fill.pair] = pos

    def position(self, pair: str) -> Position | None:
        self._fresh_read()
        return self._position(pair)

    def _position(self, pair: str) -> Position | None:
        pos = self._cache.positions.get(pair)
        if pos is None:
            r = self._db.execute("SELECT * FROM positions WHERE pair = ?", (pair,)).fetchone()
            if r is None:
                return None
            pos = self._cache.positions[pair] = position_from_row(r)
        return pos

    def fills(self, pair: str | None = None, applied: bool | None = None) -> list[Fill]:
        if pair is not None and applied is False:  # the engine's question, every bar
            self._fresh_read()
            rows = self._cache.unapplied.get(pair)
            if rows is None:
                rows = self._cache.unapplied[pair] = [
                    (int(r["ts_ms"]), int(r["rid"]), fill_from_row(r)) for r in self._db.execute(
                        "SELECT rowid AS rid, * FROM fills WHERE pair = ? AND applied = 0 ORDER BY ts_ms, rowid",
                        (pair,))]
            return [r[2] for r in rows]
        sql, args = "SELECT * FROM fills WHERE 1=1", list[Any]()
        if pair is not None:
            sql += " AND pair = ?"
            args.append(pair)
        if applied is not None:
            sql += " AND applied = ?"
            args.append(int(applied))
        return [fill_from_row(r) for r in self._db.execute(sql + " ORDER BY ts_ms, rowid", args)]

    def known_fill_ids(self, pair: str) -> set[str]:
        return {r[0] for r in self._db.execute("SELECT fill_id FROM fills WHERE pair = ?", (pair,))}

    # ---- engine, regimes, equity, events --------------------------------------------------------

    def save_engine(self, pair: str, bar_ts: int, state: bytes, extra: dict[str, Any], applied_fill_ids: list[str],
                    now_ms: int) -> None:
        """The engine state after bar `bar_ts`, and the fills it absorbed, in ONE transaction."""
        with self.tx() as db:
            db.execute(PUT_ENGINE, (pair, bar_ts, state, json.dumps(extra, sort_keys=True), now_ms))
            db.executemany("UPDATE fills SET applied = 1 WHERE fill_id = ?", [(f,) for f in applied_fill_ids])
            self._cache.mark_applied(applied_fill_ids)

    def commit_cycle(self, pair: str, bar_ts: int, state: bytes, extra: dict[str, Any] | str, applied_fill_ids: list[str],
                     regime: tuple[str, float, str, dict[str, Any] | str, str], close: float, close_ts: int,
                     now_ms: int, meta: dict[str, str] | None = None, answers: Sequence[Answer] = ()) -> None:
        """The end of a pair's cycle in ONE transaction: the engine state after bar `bar_ts`, the fills
        it absorbed, the regime record, the equity snapshot at the bar's close, runner meta, and the
        venue's answers to the cycle's orders (`settle`).
        `extra` and the regime's params: a dict, or its JSON text already serialised by the caller."""
        predicted, prob, active, params, version = regime
        extra_json = extra if isinstance(extra, str) else json.dumps(extra, sort_keys=True)
        params_json = params if isinstance(params, str) else json.dumps(params, sort_keys=True, default=float)
        with self.tx() as db:
            for client_id, status, venue_order_id in answers:
                self._set_status(db, client_id, status, now_ms, venue_order_id, None)
            db.execute(PUT_ENGINE, (pair, bar_ts, state, extra_json, now_ms))
            if applied_fill_ids:
                db.executemany("UPDATE fills SET applied = 1 WHERE fill_id = ?", [(f,) for f in applied_fill_ids])
                self._cache.mark_applied(applied_fill_ids)
            db.execute("INSERT OR REPLACE INTO regimes VALUES (?,?,?,?,?,?,?)",
                       (pair, bar_ts, predicted, prob, active, params_json, version))
            p = self._position(pair)
            if p is not None:
                db.execute("INSERT OR REPLACE INTO equity VALUES (?,?,?,?,?,?)",
                           (pair, close_ts, close, p.cash_quote, p.base, p.cash_quote + p.base * close))
            if meta:
                db.executemany(PUT_META, list(meta.items()))
                self._note_meta(meta)

    def load_engine(self, pair: str) -> tuple[int, bytes, dict[str, Any]] | None:
        r = self._db.execute("SELECT bar_ts, state, extra_json FROM engine WHERE pair = ?", (pair,)).fetchone()
        return None if r is None else (int(r[0]), bytes(r[1]), json.loads(r[2]))

    def record_regime(self, pair: str, bar_ts: int, predicted: str, probability: float, active: str,
                      params: dict[str, Any], policy_version: str) -> None:
        with self.tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO regimes VALUES (?,?,?,?,?,?,?)",
                (pair, bar_ts, predicted, probability, active, json.dumps(params, sort_keys=True, default=float),
                 policy_version),
            )

    def last_regime(self, pair: str) -> dict[str, Any] | None:
        r = self._db.execute("SELECT * FROM regimes WHERE pair = ? ORDER BY bar_ts DESC LIMIT 1", (pair,)).fetchone()
        if r is None:
            return None
        return {**dict(r), "params": json.loads(r["params_json"])}

    def record_equity(self, pair: str, ts_ms: int, close: float) -> float:
        pos = self.position(pair)
        if pos is None:
            raise KeyError(f"no position for {pair}")
        eq = pos.equity(close)
        with self.tx() as db:
            db.execute("INSERT OR REPLACE INTO equity VALUES (?,?,?,?,?,?)",
                       (pair, ts_ms, close, pos.cash_quote, pos.base, eq))
        return eq

    def equity_curve(self, pair: str, since_ms: int = 0) -> list[tuple[int, float]]:
        rows = self._db.execute("SELECT ts_ms, equity_quote FROM equity WHERE pair = ? AND ts_ms >= ? ORDER BY ts_ms",
                                (pair, since_ms))
        return [(int(a), float(b)) for a, b in rows]

    def event(self, ts_ms: int, level: str, kind: str, message: str, pair: str | None = None) -> None:
        with self.tx() as db:
            db.execute("INSERT INTO events(ts_ms, pair, level, kind, message) VALUES (?,?,?,?,?)",
                       (ts_ms, pair, level, kind, message))

    def events(self, limit: int = 20, pair: str | None = None) -> list[dict[str, Any]]:
        sql, args = "SELECT * FROM events", []
        if pair is not None:
            sql += " WHERE pair = ?"
            args.append(pair)
        return [dict(r) for r in self._db.execute(sql + " ORDER BY id DESC LIMIT ?", (*args, limit))]

    def pairs(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT pair FROM positions ORDER BY pair")]
