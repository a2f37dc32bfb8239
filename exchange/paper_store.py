"""Persistence of a paper account: balances, orders, fills and the matching cursor in SQLite.

One transaction per change, so a crash leaves either the state before or after an operation,
never half of it. WAL mode keeps readers (e.g. `aiotrade status`) out of the writer's way.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from exchange.emulator.accounts import Account, AssetBalance, SimOrder, SimTrade
from exchange.emulator.matching import MatchingEngine

SCHEMA_VERSION = "1"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS balances (asset TEXT PRIMARY KEY, free REAL NOT NULL, locked REAL NOT NULL);
CREATE TABLE IF NOT EXISTS orders (order_id INTEGER PRIMARY KEY, client_order_id TEXT UNIQUE NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trades (trade_id INTEGER PRIMARY KEY, body TEXT NOT NULL);
"""


class PaperStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as e:
            raise ConfigError(
                f"paper state {self.path} is not a usable SQLite file ({e})",
                "move it away to start a fresh paper account, or point to another file",
            ) from None
        self._saved_trades = 0

    def close(self) -> None:
        self._db.close()

    def _meta(self) -> dict[str, str]:
        return dict(self._db.execute("SELECT key, value FROM meta").fetchall())

    def load(self, account: Account, engine: MatchingEngine, venue: str) -> bool:
        """Restore a saved session into `account` and `engine`; False when the file is new."""
        meta = self._meta()
        if not meta:
            return False
        if meta.get("venue") != venue:
            raise ConfigError(
                f"paper state {self.path} belongs to {meta.get('venue')!r}, not {venue!r}",
                "use one paper state file per exchange",
            )
        account.balances = {
            a: AssetBalance(f, lk)
            for a, f, lk in self._db.execute("SELECT asset, free, locked FROM balances")
        }
        for (body,) in self._db.execute("SELECT body FROM orders ORDER BY order_id"):
            account.add_order(SimOrder(**json.loads(body)))
        account.trades = [
            SimTrade(**json.loads(b))
            for (b,) in self._db.execute("SELECT body FROM trades ORDER BY trade_id")
        ]
        account.drain_changes()
        engine.next_order_id = int(meta["next_order_id"])
        engine.next_trade_id = int(meta["next_trade_id"])
        engine.cursor_ms = {k: int(v) for k, v in json.loads(meta["cursor_ms"]).items()}
        self._saved_trades = len(account.trades)
        return True

    def save(self, account: Account, engine: MatchingEngine, venue: str) -> None:
        meta: dict[str, Any] = {
            "schema": SCHEMA_VERSION,
            "venue": venue,
            "next_order_id": engine.next_order_id,
            "next_trade_id": engine.next_trade_id,
            "cursor_ms": json.dumps(engine.cursor_ms),
        }
        changed = account.drain_changes()
        new_trades = account.trades[self._saved_trades :]
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                "INSERT OR REPLACE INTO meta VALUES (?, ?)", [(k, str(v)) for k, v in meta.items()]
            )
            db.execute("DELETE FROM balances")
            db.executemany(
                "INSERT INTO balances VALUES (?, ?, ?)",
                [(a, b.free, b.locked) for a, b in account.balances.items()],
            )
            db.executemany(
                "INSERT OR REPLACE INTO orders VALUES (?, ?, ?)",
                [
                    (o.order_id, o.client_order_id, json.dumps(asdict(o)))
                    for o in (account.orders[i] for i in sorted(changed))
                ],
            )
            db.executemany(
                "INSERT INTO trades VALUES (?, ?)", [(t.trade_id, json.dumps(asdict(t))) for t in new_trades]
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            account.changed_orders |= changed  # keep them for the next save
            raise
        self._saved_trades = len(account.trades)
