"""The state DB's connection, schema, transactions and meta: the base of `live.state.StateStore`.

Every transaction (`tx`) checks first whether another connection committed since this one last looked
(`PRAGMA data_version`), and drops the write-through cache (`live.state_cache`) if so; a transaction
that fails drops it too, since the writes inside it already updated it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core.errors import ConfigError
from live.records import PUT_META, SCHEMA, SCHEMA_VERSION
from live.runner_lock import RunnerLock
from live.state_cache import StoreCache
from live.state_checkpoint import Checkpointer

# Commits between two checkpoints by the thread (`live.state_checkpoint`; ~4 WAL pages a commit), and
# the WAL size at which the writer checkpoints inline (SQLite's default: 1,000 pages).
CHECKPOINT_EVERY_COMMITS = 250
INLINE_CHECKPOINT_PAGES = 4_000


class StoreCore:
    """The connection to one runner's state DB. `namespace` makes client ids unique per bot (two bots, one
    account)."""

    def __init__(self, path: str | Path, namespace: str = "aio", read_only: bool = False,
                 durable_intents: bool = True, exclusive: bool = False) -> None:
        """`exclusive`: the runner's own store; a second one on the same file is refused while this one
        is open (`live.runner_lock`)."""
        self.path = Path(path)
        self._lock = RunnerLock(self.path).acquire() if exclusive and not read_only else None
        try:
            self._open(namespace, read_only, durable_intents)
        except BaseException:
            if self._lock is not None:
                self._lock.release()
            raise

    def _open(self, namespace: str, read_only: bool, durable_intents: bool) -> None:
        self.namespace = namespace
        self.read_only = read_only
        self._checkpointer: Checkpointer | None = None
        self._cache = StoreCache()
        self._data_version: int | None = None
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
            self._db.execute(f"PRAGMA wal_autocheckpoint={INLINE_CHECKPOINT_PAGES}")
            self._checkpointer = Checkpointer(self.path, CHECKPOINT_EVERY_COMMITS)
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.row_factory = sqlite3.Row
        if not read_only:
            self._migrate()
        else:
            self._check_version()
        self._fresh()  # the DB version the cache starts from

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.close()
        self._db.close()
        if self._lock is not None:
            self._lock.release()

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
    def tx(self, durable: bool = False, fresh: bool = True) -> Iterator[sqlite3.Connection]:
        """One atomic transaction (BEGIN IMMEDIATE: the writer lock is taken up front).

        `durable`: fsync the WAL at this commit (synchronous=FULL for this transaction only).
        `fresh=False` skips the check for other connections' commits, for a transaction that decides
        nothing from cached rows (it writes values it was given); the next checked one still sees them."""
        if durable:
            self._db.execute("PRAGMA synchronous=FULL")
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if fresh:
                    self._fresh()  # the writer lock is ours: the cache stays true until COMMIT
                yield self._db
            except BaseException:
                self._abort()
                raise
            try:
                self._db.execute("COMMIT")
            except BaseException:
                self._abort()
                raise
            if self._checkpointer is not None:
                self._checkpointer.committed()
        finally:
            if durable:
                self._db.execute("PRAGMA synchronous=NORMAL")

    def _abort(self) -> None:
        """After a failed transaction: roll back what is left, and forget every cached row (the writes
        inside the transaction already updated the cache)."""
        try:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
        finally:
            self._cache.drop()

    def _fresh_read(self) -> None:
        """Before serving a read from the cache. A read-only store (`aiotrade status`) watches another
        process's writes: it checks every time. The writer checks inside every transaction, under the
        writer lock, so every write decides on fresh rows; its reads in between see its own writes
        (a check per read would cost an SQLite call, the very thing the cache saves)."""
        if self.read_only:
            self._fresh()

    def _fresh(self) -> None:
        """Drop the cache when another connection committed since we last looked."""
        version = self._db.execute("PRAGMA data_version").fetchone()[0]
        if version != self._data_version:
            self._cache.drop()
            self._data_version = version

    def get_meta(self, key: str) -> str | None:
        self._fresh_read()
        meta = self._cache.meta
        if key in meta:
            return meta[key]
        try:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        except sqlite3.OperationalError:  # a new file: no tables yet (nothing cached)
            return None
        value = meta[key] = None if row is None else str(row[0])
        return value

    def set_meta(self, key: str, value: str) -> None:
        self._cache.meta.pop(key, None)  # unknown until the write returns (an interrupt in between)
        self._db.execute(PUT_META, (key, value))
        self._note_meta({key: value})

    def set_metas(self, items: dict[str, str]) -> None:
        with self.tx(fresh=False) as db:
            db.executemany(PUT_META, list(items.items()))
            self._note_meta(items)

    def _note_meta(self, items: dict[str, str]) -> None:
        for key, value in items.items():
            if isinstance(value, str):
                self._cache.meta[key] = value
            else:  # stored with SQLite's own conversion: read it back when asked
                self._cache.meta.pop(key, None)
