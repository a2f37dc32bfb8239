"""One runner per state DB: a second runner on the same file is refused with the owner's pid and the fix,
a SIGKILLed runner leaves no stale lock, and `aiotrade status` reads while the runner holds it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from core.errors import ConfigError
from live.runner_lock import RunnerLock
from live.state import StateStore
from live.status import read_status

from .harness import REPO

HOLD = """
import sys, time
from live.state import StateStore
s = StateStore(sys.argv[1], exclusive=True)
print("held", flush=True)
time.sleep(120)
"""


def test_a_second_runner_store_on_the_same_db_is_refused_until_the_first_closes(tmp_path):
    db = tmp_path / "state.db"
    first = StateStore(db, exclusive=True)
    first.set_meta("mode", "paper")
    with pytest.raises(ConfigError) as e:
        StateStore(db, exclusive=True)
    assert e.value.problem == f"state DB {db} is in use by another runner (pid {os.getpid()})"
    assert f"kill {os.getpid()}" in e.value.fix and "--state-db" in e.value.fix
    assert read_status(db).runner["mode"] == "paper"  # status reads while the runner runs
    StateStore(tmp_path / "other.db", exclusive=True).close()  # another DB is another lock
    first.close()
    again = StateStore(db, exclusive=True)
    assert again.get_meta("mode") == "paper"
    again.close()


def test_a_killed_runner_leaves_no_stale_lock(tmp_path):
    db = tmp_path / "state.db"
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(db)], cwd=REPO, stdout=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert p.stdout is not None and p.stdout.readline().strip() == "held"
        with pytest.raises(ConfigError, match=rf"in use by another runner \(pid {p.pid}\)"):
            StateStore(db, exclusive=True)
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=30)
    deadline = time.monotonic() + 10
    while True:  # the kernel drops a dead process's flock at once; allow for a slow reaper
        try:
            store = StateStore(db, exclusive=True)
            break
        except ConfigError:
            assert time.monotonic() < deadline, "the lock outlived the killed runner"
            time.sleep(0.05)
    store.close()


def test_a_store_that_fails_to_open_releases_its_lock(tmp_path):
    db = tmp_path / "state.db"
    db.write_text("not a database")
    with pytest.raises(Exception):  # noqa: B017 - whatever SQLite says; the lock is the point here
        StateStore(db, exclusive=True)
    RunnerLock(db).acquire().release()
