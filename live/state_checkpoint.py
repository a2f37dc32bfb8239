"""Checkpoints of the state DB's write-ahead log on a thread of their own, so the runner rarely waits on one.

SQLite checkpoints the WAL inline: the commit that finds the WAL past its size copies the pages into
the DB file and fsyncs both, a stall of several milliseconds (more, the more dirty pages the fsyncs
must flush) in the middle of a cycle. Here the writer counts its commits and every `every_commits`
wakes this thread, which runs a PASSIVE checkpoint on its own connection: SQLite's concurrent mode, it
never waits for the writer nor blocks it, and copies only committed frames (durability is what the
commits made it). The writer still checkpoints inline when the WAL reaches its (larger) size: only the
writer can start the WAL over while it keeps appending, but by then this thread has copied and flushed
nearly everything, so that checkpoint is short. The thread starts at the first wake-up (short-lived
stores never start one) and stops on `close`.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

from live.logs import log_event


class Checkpointer:
    def __init__(self, path: Path, every_commits: int) -> None:
        self.path = path
        self.every_commits = every_commits
        self._commits = 0
        self.done = 0  # checkpoints run (for tests and curiosity)
        self._wake = threading.Event()
        self._stop = False
        self._thread: threading.Thread | None = None

    def committed(self) -> None:
        """One more commit by the writer (its thread only)."""
        self._commits += 1
        if self._commits < self.every_commits:
            return
        self._commits = 0
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="state-db-checkpoint", daemon=True)
            self._thread.start()
        self._wake.set()

    def close(self) -> None:
        if self._thread is None:
            return
        self._stop = True
        self._wake.set()
        self._thread.join(timeout=30)
        self._thread = None

    def _run(self) -> None:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA synchronous=NORMAL")  # a checkpoint fsyncs the WAL, then the DB file
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._stop:
                    return
                try:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    self.done += 1
                except sqlite3.Error as e:  # the writer's backstop checkpoint takes over
                    log_event(logging.WARNING, "checkpoint_failed", f"state DB checkpoint failed ({e}); "
                              "SQLite checkpoints inline instead", path=str(self.path))
        finally:
            db.close()
