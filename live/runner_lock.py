"""One runner per state DB: an exclusive lock on `<state db>.lock` for as long as the runner has it open.

Two runners on one state DB would both act on the same intents: the second re-sends or cancels what
the first just placed, and each books the other's fills as its own. SQLite's own locking does not
stop that (each transaction is fine on its own). The lock is `flock` on a side file: the kernel drops
it when the process dies, SIGKILL included, so a crashed runner never leaves a stale lock behind and a
restart takes over at once. The file holds the owner's pid, for the message. `aiotrade status` reads
the DB without the lock (read-only, WAL).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from core.errors import ConfigError


class RunnerLock:
    def __init__(self, db_path: str | Path) -> None:
        self.path = Path(f"{db_path}.lock")
        self._file: IO[str] | None = None

    def acquire(self) -> RunnerLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = open(self.path, "a+")  # noqa: SIM115 - held open for the runner's lifetime
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            owner = f.read().strip() or "unknown"
            f.close()
            db = str(self.path)[: -len(".lock")]
            raise ConfigError(
                f"state DB {db} is in use by another runner (pid {owner})",
                f"stop that runner first (Ctrl-C in its terminal, or `kill {owner}`; it finishes its cycle "
                "and exits), or give this one its own state DB (--state-db)",
            ) from None
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        self._file = f
        return self

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None
