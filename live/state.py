"""Persistent runner state in SQLite (WAL): order intents, fills, positions, equity, regimes, engine state.

Why SQLite in WAL mode: one file, atomic transactions, crash-safe (a SIGKILL mid-write leaves the last
committed state), and `aiotrade status` can read while the runner writes. Every order is written as an
*intent* (with its idempotent client order id) and committed BEFORE it is sent; its lifecycle is

    intent -> sent -> open -> filled | cancelled | rejected          (expired: never reached the venue)
                        \\-> cancelling -> cancelled | filled

Fills are keyed by the venue's trade id, so recording one twice is a no-op. Positions are derived from
fills in the same transaction that records them. The engine state per pair is saved together with the
"applied" mark of the fills it has absorbed, so after a crash every fill is applied exactly once.
Time is always passed in (`now_ms`): the runner's clock is injectable.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from live.ids import intent_client_id
from live.records import (
    ACTIVE,
    CANCELLED,
    CANCELLING,
    EXPIRED,
    FILLED,
    FINAL,
    INTENT,
    OPEN,
    REJECTED,
    SCHEMA,
    SCHEMA_VERSION,
    SENT,
    UNRESOLVED,
    EngineRef,
    Fill,
    Intent,
    Position,
    book_fill,
    intent_from_row,
    position_from_row,
)

__all__ = [
    "ACTIVE", "CANCELLED", "CANCELLING", "EXPIRED", "FILLED", "FINAL", "INTENT", "OPEN", "REJECTED", "SCHEMA_VERSION",
    "SENT", "UNRESOLVED", "EngineRef", "Fill", "Intent", "Position", "StateStore",
]

class StateStore:
    """One runner's state. `namespace` makes client ids unique per bot (two bots, one account)."""

    def __init__(self, path: str | Path, namespace: str = "aio", read_only: bool = False,
                 durable_intents: bool = True) -> None:
        self.path = Path(path)
        self.namespace = namespace
        # False only for replays: nothing real is at stake, and an fsync per order costs milliseconds.
        self.durable_intents = durable_intents
        if read_only:
            if not self.path.is_file():
                raise ConfigError(
                    f"state database {self.path} not found", "start the runner with `aiotrade live` first"
                )
            uri = f"file:{self.path}?mode=ro"
            self._db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: every commit survives a process crash (SIGKILL included); the WAL is
            # fsynced at checkpoints. Commits that must also survive power loss (an intent, right before
            # its order is sent) use `tx(durable=True)`, whose fsync also covers everything before it.
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.row_factory = sqlite3.Row
        if not read_only:
            self._migrate()
        else:
            self._check_version()

    def close(self) -> None:
        self._db.close()

    # ---- schema -------------------------------------------------------------------------------

    def _migrate(self) -> None:
        self._check_version()  # refuse a newer/older file before touching it
        # executescript commits on its own; every statement is idempotent (IF NOT EXISTS).
        self._db.executescript(SCHEMA)
        found = self.get_meta("schema_version")
        if found is None:
            self.set_meta("schema_version", str(SCHEMA_VERSION))
        self._check_version()

    def _check_version(self) -> None:
        found = self.get_meta("schema_version")
        if found is not None and int(found) != SCHEMA_VERSION:
            raise ConfigError(
                f"state database {self.path} has schema version {found}, this aiotrade expects {SCHEMA_VERSION}",
                "use the aiotrade version that wrote it, or point live.state_db at a new file",
            )

    @contextmanager
    def tx(self, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """One atomic transaction (BEGIN IMMEDIATE: the writer lock is taken up front).

        `durable`: fsync the WAL at this commit (synchronous=FULL for this transaction only)."""
        if durable:
            self._db.execute("PRAGMA synchronous=FULL")
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        finally:
            if durable:
                self._db.execute("PRAGMA synchronous=NORMAL")

    def get_meta(self, key: str) -> str | None:
        try:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        except sqlite3.OperationalError:  # a new file: no tables yet
            return None
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def set_metas(self, items: dict[str, str]) -> None:
        with self.tx() as db:
            db.executemany("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", list(items.items()))

    # ---- intents ------------------------------------------------------------------------------

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
        e = engine or EngineRef()
        cid = intent_client_id(self.namespace, pair, bar_ts, slot, side, price, amount)
        with self.tx(durable=self.durable_intents) as db:
            row = db.execute("SELECT * FROM intents WHERE client_id = ?", (cid,)).fetchone()
            if row is None:
                seq = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM intents").fetchone()[0]
                db.execute(
                    "INSERT INTO intents(client_id, seq, pair, side, role, slot, order_type, kind, ref, epoch, aux,"
                    " price, amount, bar_ts, status, filled, created_ms, updated_ms)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,0,?,?)",
                    (cid, seq, pair, side, role, slot, "market" if e.market else "limit", e.kind, e.ref, e.epoch,
                     e.aux, price, amount, bar_ts, INTENT, now_ms, now_ms),
                )
            elif row["status"] in (EXPIRED, REJECTED) and row["filled"] == 0:
                db.execute("UPDATE intents SET status = ?, updated_ms = ?, reason = NULL WHERE client_id = ?",
                           (INTENT, now_ms, cid))
            row = db.execute("SELECT * FROM intents WHERE client_id = ?", (cid,)).fetchone()
        return intent_from_row(row)

    def set_status(
        self, client_id: str, status: str, now_ms: int, *, venue_order_id: str | None = None,
        reason: str | None = None,
    ) -> None:
        with self.tx() as db:
            self._set_status(db, client_id, status, now_ms, venue_order_id, reason)

    def _set_status(
        self, db: sqlite3.Connection, client_id: str, status: str, now_ms: int, venue_order_id: str | None,
        reason: str | None,
    ) -> None:
        row = db.execute("SELECT status FROM intents WHERE client_id = ?", (client_id,)).fetchone()
        if row is None:
            raise KeyError(f"unknown intent {client_id}")
        if row[0] in FINAL and status != row[0]:
            # A final state is final: a late answer (e.g. "open" after we saw it filled) is ignored.
            return
        db.execute(
            "UPDATE intents SET status = ?, updated_ms = ?, venue_order_id = COALESCE(?, venue_order_id),"
            " reason = COALESCE(?, reason) WHERE client_id = ?",
            (status, now_ms, venue_order_id, reason, client_id),
        )

    def intent(self, client_id: str) -> Intent | None:
        row = self._db.execute("SELECT * FROM intents WHERE client_id = ?", (client_id,)).fetchone()
        return None if row is None else intent_from_row(row)

    def intents(self, pair: str | None = None, statuses: tuple[str, ...] | None = None) -> list[Intent]:
        sql, args = "SELECT * FROM intents WHERE 1=1", []
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
        row = self._db.execute("SELECT * FROM intents WHERE pair = ? AND venue_order_id = ?",
                               (pair, venue_order_id)).fetchone()
        return None if row is None else intent_from_row(row)

    def set_slot(self, client_id: str, slot: int, engine: EngineRef, now_ms: int) -> None:
        """A kept order now carries out another engine order (the engine renumbered it)."""
        with self.tx() as db:
            db.execute("UPDATE intents SET slot = ?, kind = ?, ref = ?, epoch = ?, aux = ?, updated_ms = ?"
                       " WHERE client_id = ?",
                       (slot, engine.kind, engine.ref, engine.epoch, engine.aux, now_ms, client_id))

    # ---- fills and positions --------------------------------------------------------------------

    def init_position(self, pair: str, cash_quote: float, now_ms: int) -> Position:
        """Create the pair's book with its allocated cash; a no-op when it exists (restart)."""
        with self.tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO positions VALUES (?, ?, 0, 0, 0, 0, 0, ?)", (pair, cash_quote, now_ms)
            )
        pos = self.position(pair)
        assert pos is not None
        return pos

    def record_fill(self, fill: Fill, quote_asset: str, now_ms: int) -> bool:
        """Record one venue trade and update the position atomically. False if it was already known."""
        with self.tx() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO fills(fill_id, client_id, pair, side, price, amount, fee, fee_asset, ts_ms)"
                " VALUES (?,?,?,?,?,?,?,?,?)",
                (fill.fill_id, fill.client_id, fill.pair, fill.side, fill.price, fill.amount, fill.fee,
                 fill.fee_asset, fill.ts_ms),
            )
            if cur.rowcount == 0:
                return False
            self._apply_to_position(db, fill, quote_asset, now_ms)
            row = db.execute("SELECT amount, filled, status FROM intents WHERE client_id = ?", (fill.client_id,)).fetchone()
            if row is not None:
                filled = row["filled"] + fill.amount
                # The lot grid makes "filled == amount" exact up to float noise.
                done = filled >= row["amount"] * (1 - 1e-9)
                status = FILLED if done else row["status"]
                if status in (INTENT, SENT):
                    status = OPEN  # a fill proves the venue has it
                db.execute(
                    "UPDATE intents SET filled = ?, status = CASE WHEN status IN ('filled','rejected','expired')"
                    " THEN status ELSE ? END, updated_ms = ? WHERE client_id = ?",
                    (filled, status, now_ms, fill.client_id),
                )
        return True

    def _apply_to_position(self, db: sqlite3.Connection, fill: Fill, quote_asset: str, now_ms: int) -> None:
        p = db.execute("SELECT * FROM positions WHERE pair = ?", (fill.pair,)).fetchone()
        if p is None:
            raise KeyError(f"no position for {fill.pair}: call init_position first")
        pos = book_fill(position_from_row(p), fill, quote_asset)
        db.execute(
            "UPDATE positions SET cash_quote=?, base=?, cost_quote=?, realized_pnl_quote=?, fees_quote=?,"
            " n_fills = ?, updated_ms=? WHERE pair = ?",
            (pos.cash_quote, pos.base, pos.cost_quote, pos.realized_pnl_quote, pos.fees_quote, pos.n_fills, now_ms,
             fill.pair),
        )

    def position(self, pair: str) -> Position | None:
        r = self._db.execute("SELECT * FROM positions WHERE pair = ?", (pair,)).fetchone()
        return None if r is None else position_from_row(r)

    def fills(self, pair: str | None = None, applied: bool | None = None) -> list[Fill]:
        sql, args = "SELECT * FROM fills WHERE 1=1", []
        if pair is not None:
            sql += " AND pair = ?"
            args.append(pair)
        if applied is not None:
            sql += " AND applied = ?"
            args.append(int(applied))
        rows = self._db.execute(sql + " ORDER BY ts_ms, rowid", args)
        return [Fill(r["fill_id"], r["client_id"], r["pair"], r["side"], r["price"], r["amount"], r["fee"],
                     r["fee_asset"], r["ts_ms"]) for r in rows]

    def known_fill_ids(self, pair: str) -> set[str]:
        return {r[0] for r in self._db.execute("SELECT fill_id FROM fills WHERE pair = ?", (pair,))}

    # ---- engine, regimes, equity, events --------------------------------------------------------

    def save_engine(self, pair: str, bar_ts: int, state: bytes, extra: dict[str, Any], applied_fill_ids: list[str],
                    now_ms: int) -> None:
        """The engine state after bar `bar_ts`, and the fills it absorbed, in ONE transaction."""
        with self.tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO engine(pair, bar_ts, state, extra_json, updated_ms) VALUES (?,?,?,?,?)",
                (pair, bar_ts, state, json.dumps(extra, sort_keys=True), now_ms),
            )
            db.executemany("UPDATE fills SET applied = 1 WHERE fill_id = ?", [(f,) for f in applied_fill_ids])

    def commit_cycle(self, pair: str, bar_ts: int, state: bytes, extra: dict[str, Any] | str, applied_fill_ids: list[str],
                     regime: tuple[str, float, str, dict[str, Any], str], close: float, close_ts: int,
                     now_ms: int, meta: dict[str, str] | None = None) -> None:
        """The end of a pair's cycle in ONE transaction: the engine state after bar `bar_ts`, the fills
        it absorbed, the regime record, the equity snapshot at the bar's close, and runner meta.
        `extra`: a dict, or its JSON text already serialised by the caller."""
        predicted, prob, active, params, version = regime
        extra_json = extra if isinstance(extra, str) else json.dumps(extra, sort_keys=True)
        with self.tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO engine(pair, bar_ts, state, extra_json, updated_ms) VALUES (?,?,?,?,?)",
                (pair, bar_ts, state, extra_json, now_ms),
            )
            db.executemany("UPDATE fills SET applied = 1 WHERE fill_id = ?", [(f,) for f in applied_fill_ids])
            db.execute("INSERT OR REPLACE INTO regimes VALUES (?,?,?,?,?,?,?)",
                       (pair, bar_ts, predicted, prob, active, json.dumps(params, sort_keys=True, default=float),
                        version))
            p = db.execute("SELECT cash_quote, base FROM positions WHERE pair = ?", (pair,)).fetchone()
            if p is not None:
                db.execute("INSERT OR REPLACE INTO equity VALUES (?,?,?,?,?,?)",
                           (pair, close_ts, close, p[0], p[1], p[0] + p[1] * close))
            if meta:
                db.executemany("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", list(meta.items()))

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
