"""Where Optuna studies live: a local journal file by default, an RDB URL to share studies between machines.

Storage strings (config `tuning.storage`, CLI `--storage`):

- empty / None: the embedded default, a journal file `mlruns/optuna/journal.log` (relative to the working
  directory, like the MLflow store). Several processes on one machine share it safely.
- `journal:PATH` (or a bare path ending in `.log`): a journal file elsewhere, e.g. on a shared disk.
- `sqlite:///PATH`, `postgresql://user:pw@host:5432/db`, `mysql+pymysql://...`: an Optuna RDBStorage;
  PostgreSQL is the way several machines join one study (`aiotrade tune --storage URL --study NAME --worker`).

The journal is appended under an `fcntl.flock` on a sidecar file instead of Optuna's default symlink lock:
the kernel drops a flock when its process dies, so a crashed worker never leaves a stale lock behind, and
a lock that stays busy longer than `lock_timeout_s` ends in one clear message instead of a silent hang.
Appends are written and flushed but not fsync'ed: other processes see them at once (page cache) and a
killed process loses nothing it wrote; only a power cut may lose the newest trials. An fsync per
operation cost ~5 ms here (~60 ms per trial, more than the backtests), so tuning would crawl with it.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optuna.storages.journal import JournalFileBackend
from optuna.storages.journal._file import BaseJournalFileLock, get_lock_file  # base of the public locks

from core.errors import AIOTradeError

if TYPE_CHECKING:
    import optuna

DEFAULT_JOURNAL = Path("mlruns") / "optuna" / "journal.log"
RDB_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql")
_FIX_DEFAULT = "or leave tuning.storage empty to use the local journal under mlruns/optuna/"


class TuningStorageError(AIOTradeError):
    """The Optuna storage is unreachable, locked, unknown or does not hold the study asked for."""


def resolve_storage(storage: str | None) -> str:
    """The canonical storage string: `journal:<absolute path>` or the RDB URL as given."""
    if storage is None or not storage.strip():
        return f"journal:{DEFAULT_JOURNAL.resolve()}"
    storage = storage.strip()
    if storage.startswith("journal:"):
        path = storage.removeprefix("journal:").removeprefix("//")
        if not path:
            raise TuningStorageError("storage 'journal:' names no file", "write journal:PATH, e.g. journal:/data/optuna.log")
        return f"journal:{Path(path).expanduser().resolve()}"
    scheme = storage.split(":", 1)[0].split("+", 1)[0].lower()
    if "://" in storage and scheme in RDB_SCHEMES:
        return storage
    if "://" not in storage and storage.endswith((".log", ".jsonl")):
        return f"journal:{Path(storage).expanduser().resolve()}"
    raise TuningStorageError(
        f"unknown Optuna storage {describe(storage)!r}",
        "use journal:PATH, sqlite:///PATH or postgresql://USER@HOST:PORT/DB, " + _FIX_DEFAULT,
    )


def describe(storage: str) -> str:
    """The storage string with any password masked, safe for messages and logs."""
    if "://" not in storage:
        return storage
    try:
        from sqlalchemy.engine import make_url

        return make_url(storage).render_as_string(hide_password=True)
    except Exception:  # not parseable as a URL: show the scheme only
        return storage.split("://", 1)[0] + "://***"


def open_storage(storage: str | None, *, lock_timeout_s: float = 60.0) -> optuna.storages.BaseStorage:
    """Open (and create if needed) the storage; every failure becomes a TuningStorageError."""
    url = resolve_storage(storage)
    if url.startswith("journal:"):
        return _open_journal(Path(url.removeprefix("journal:")), lock_timeout_s)
    return _open_rdb(url)


def _open_journal(path: Path, lock_timeout_s: float) -> optuna.storages.BaseStorage:
    from optuna.storages import JournalStorage

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        backend = _FlushedJournalBackend(str(path), lock_obj=FlockJournalLock(str(path), lock_timeout_s))
        with storage_errors(f"journal:{path}"):
            return JournalStorage(backend)
    except OSError as e:
        raise TuningStorageError(
            f"cannot open the Optuna journal {path}: {e.strerror or e}",
            "check that the folder exists and is writable, " + _FIX_DEFAULT,
        ) from None


def _open_rdb(url: str) -> optuna.storages.BaseStorage:
    from optuna.storages import RDBStorage

    url = _with_installed_pg_driver(url)
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("postgres"):
        # Fail in seconds, not minutes, when the server is down.
        engine_kwargs = {"connect_args": {"connect_timeout": 5}, "pool_pre_ping": True}
    elif url.startswith("sqlite"):
        engine_kwargs = {"connect_args": {"timeout": 30}}
    try:
        with storage_errors(url):
            return _create_rdb(RDBStorage, url, engine_kwargs)
    except ImportError as e:
        raise TuningStorageError(
            f"no database driver for {describe(url)}: {e}",
            "pip install 'psycopg[binary]' for PostgreSQL (or the driver your URL names), " + _FIX_DEFAULT,
        ) from None


def _create_rdb(rdb_storage: Any, url: str, engine_kwargs: dict[str, Any]) -> Any:
    """RDBStorage, retried when another process creates the tables at the same moment (two workers
    started together on an empty database collide on CREATE TABLE; the second attempt finds them)."""
    import optuna
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    for attempt in range(5):
        try:
            # Heartbeats let a study notice a worker that died mid-trial and mark its trial FAIL.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return rdb_storage(url, engine_kwargs=engine_kwargs, heartbeat_interval=30, grace_period=120)
        except (IntegrityError, ProgrammingError):
            if attempt == 4:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def _with_installed_pg_driver(url: str) -> str:
    """`postgresql://` means psycopg2 to SQLAlchemy; use psycopg 3 when that is what is installed."""
    scheme, rest = url.split("://", 1)
    if scheme not in ("postgresql", "postgres"):
        return url
    import importlib.util

    if importlib.util.find_spec("psycopg2") is None and importlib.util.find_spec("psycopg") is not None:
        return f"postgresql+psycopg://{rest}"
    return f"postgresql://{rest}"


@contextmanager
def storage_errors(url: str) -> Iterator[None]:
    """Turn a storage failure raised anywhere inside (create, optimize, load) into one clear message."""
    try:
        yield
    except TuningStorageError:
        raise
    except Exception as e:
        translated = _translate(e, url)
        if translated is None:
            raise
        raise translated from None


def _translate(e: Exception, url: str) -> TuningStorageError | None:
    try:
        from sqlalchemy.exc import OperationalError, ProgrammingError
    except ImportError:  # pragma: no cover - sqlalchemy ships with optuna
        return None
    where = describe(url)
    if isinstance(e, OperationalError):
        detail = str(getattr(e, "orig", e)).strip().splitlines()[0] if str(e) else type(e).__name__
        if "locked" in detail.lower():
            return TuningStorageError(
                f"the Optuna storage {where} is locked by another process ({detail})",
                "wait for the other tuning process to finish, or use PostgreSQL or the journal storage for "
                "several workers",
            )
        return TuningStorageError(
            f"cannot reach the Optuna storage {where}: {detail}",
            "check that the database server runs and the URL (host, port, user, database) is right, "
            + _FIX_DEFAULT,
        )
    if isinstance(e, ProgrammingError):
        return TuningStorageError(f"the Optuna storage {where} refused a query: {e.orig}", _FIX_DEFAULT)
    return None


class _FlushedJournalBackend(JournalFileBackend):
    """Optuna's journal file, appended under the lock with one write + flush and no fsync (see above)."""

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        data = ("\n".join(json.dumps(entry, separators=(",", ":")) for entry in logs) + "\n").encode("utf-8")
        with get_lock_file(self._lock), open(self._file_path, "ab") as f:
            f.write(data)


class FlockJournalLock(BaseJournalFileLock):
    """Journal append lock on `<journal>.lock` with fcntl.flock: released by the kernel if its holder dies."""

    def __init__(self, journal_path: str, timeout_s: float = 60.0) -> None:
        self._lock_path = journal_path + ".lock"
        self._timeout_s = timeout_s
        self._fd: int | None = None

    def acquire(self) -> bool:
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self._timeout_s
        sleep_s = 0.0005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._fd = fd
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise TuningStorageError(
                        f"the Optuna journal lock {self._lock_path} stayed busy for {self._timeout_s:g} s",
                        "another process holds it: stop the stuck `aiotrade tune`/`train` (see `fuser "
                        f"{self._lock_path}`), then run again",
                    ) from None
                time.sleep(sleep_s)
                sleep_s = min(sleep_s * 2, 0.05)

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def study_names(storage: optuna.storages.BaseStorage) -> list[str]:
    return sorted(s.study_name for s in storage.get_all_studies())


def load_study(
    storage: optuna.storages.BaseStorage,
    name: str,
    url: str,
    **kwargs: Any,
) -> optuna.Study:
    """Load an existing study; a missing one names the studies that do exist."""
    import optuna

    with storage_errors(url):
        names = study_names(storage)
        if name not in names:
            listed = ", ".join(names[:20]) + (" ..." if len(names) > 20 else "") if names else "(none)"
            raise TuningStorageError(
                f"study {name!r} not found in {describe(url)}; studies there: {listed}",
                "start the studies first with `aiotrade train` or `aiotrade tune` on that storage, "
                "or list them with `aiotrade tune --list`",
            )
        return optuna.load_study(study_name=name, storage=storage, **kwargs)
