"""Optuna storage: resolution, several processes on one study, and clear messages for bad storages."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import optuna
import pytest

from pipeline.tuning_storage import (
    TuningStorageError,
    describe,
    load_study,
    open_storage,
    resolve_storage,
)

REPO = Path(__file__).resolve().parents[2]
PG_SCRIPT = REPO / ".ci" / "postgres.sh"

# A worker process: joins study "s" and runs N trials of a tiny objective, tagging each with its pid.
WORKER = """
import os, sys, time, optuna
from pipeline.tuning_storage import open_storage, storage_errors
optuna.logging.set_verbosity(optuna.logging.WARNING)
url, n = sys.argv[1], int(sys.argv[2])
storage = open_storage(url)
study = optuna.create_study(study_name="s", storage=storage, load_if_exists=True,
                            sampler=optuna.samplers.TPESampler(seed=os.getpid()))
def objective(trial):
    trial.set_user_attr("pid", os.getpid())
    x = trial.suggest_float("x", -5, 5)
    time.sleep(0.005)
    return (x - 1.0) ** 2
with storage_errors(url):
    study.optimize(objective, n_trials=n)
"""


def test_resolve_storage_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_storage(None) == f"journal:{tmp_path / 'mlruns' / 'optuna' / 'journal.log'}"
    assert resolve_storage("  ") == resolve_storage(None)
    assert resolve_storage("journal:x/j.log") == f"journal:{tmp_path / 'x' / 'j.log'}"
    assert resolve_storage("runs/study.log") == f"journal:{tmp_path / 'runs' / 'study.log'}"
    assert resolve_storage("postgresql://u:pw@h:5432/db") == "postgresql://u:pw@h:5432/db"
    assert describe("postgresql://u:pw@h:5432/db") == "postgresql://u:***@h:5432/db"
    with pytest.raises(TuningStorageError, match="unknown Optuna storage 'redis://h'"):
        resolve_storage("redis://h")


def _run_workers(url: str, n_each: int, n_workers: int = 2) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER, url, str(n_each)], env=env, stderr=subprocess.PIPE, text=True)
        for _ in range(n_workers)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-2000:]


def _assert_no_duplicates_or_losses(url: str, expected: int) -> None:
    study = optuna.load_study(study_name="s", storage=open_storage(url))
    trials = study.get_trials(deepcopy=False)
    numbers = [t.number for t in trials]
    assert len(trials) == expected
    assert sorted(numbers) == list(range(expected)), "trial numbers must be unique and gap-free"
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    per_pid = Counter(t.user_attrs["pid"] for t in trials)
    assert len(per_pid) == 2 and set(per_pid.values()) == {expected // 2}, per_pid
    assert len({t._trial_id for t in trials}) == expected


def test_two_processes_share_the_embedded_journal(tmp_path: Path) -> None:
    url = f"journal:{tmp_path / 'optuna' / 'journal.log'}"
    _run_workers(url, n_each=40)
    _assert_no_duplicates_or_losses(url, expected=80)


def test_a_busy_journal_lock_gives_one_clear_message(tmp_path: Path) -> None:
    journal = tmp_path / "journal.log"
    storage = open_storage(f"journal:{journal}", lock_timeout_s=0.3)
    # Another process (here: this one, through another file description) holds the append lock.
    fd = os.open(str(journal) + ".lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        with pytest.raises(TuningStorageError, match=r"journal lock .*journal.log.lock stayed busy for 0.3 s"):
            optuna.create_study(study_name="blocked", storage=storage)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    # Once the holder lets go, the same storage works and nothing was half-written.
    optuna.create_study(study_name="blocked", storage=storage)
    assert [s.study_name for s in storage.get_all_studies()] == ["blocked"]


def test_unreachable_rdb_gives_one_clear_message() -> None:
    pytest.importorskip("psycopg", reason="psycopg not installed (pip install 'psycopg[binary]')")
    with pytest.raises(TuningStorageError) as e:
        open_storage("postgresql://bot:s3cret@127.0.0.1:1/optuna")
    assert "cannot reach the Optuna storage" in e.value.problem
    assert "s3cret" not in str(e.value)
    assert e.value.fix and "database server runs" in e.value.fix


def test_missing_study_names_the_existing_ones(tmp_path: Path) -> None:
    url = f"journal:{tmp_path / 'j.log'}"
    storage = open_storage(url)
    optuna.create_study(study_name="policy-range-abc", storage=storage)
    with pytest.raises(TuningStorageError, match=r"study 'nope' not found .* studies there: policy-range-abc"):
        load_study(storage, "nope", url)


@pytest.fixture(scope="module")
def pg_url() -> str:
    """A PostgreSQL URL: $AIOTRADE_TEST_PG_URL (CI), else a throw-away server from .ci/postgres.sh."""
    pytest.importorskip("psycopg", reason="psycopg not installed (pip install 'psycopg[binary]')")
    if os.environ.get("AIOTRADE_TEST_PG_URL"):
        yield os.environ["AIOTRADE_TEST_PG_URL"]
        return
    out = subprocess.run(["bash", str(PG_SCRIPT), "start"], capture_output=True, text=True, timeout=120)
    env = dict(
        line.removeprefix("export ").split("=", 1) for line in out.stdout.splitlines() if line.startswith("export ")
    )
    if "AIOTRADE_TEST_PG_URL" not in env:
        pytest.skip(f"no PostgreSQL server available: {out.stdout.strip() or out.stderr.strip()}")
    try:
        yield env["AIOTRADE_TEST_PG_URL"]
    finally:
        subprocess.run(["bash", str(PG_SCRIPT), "stop", env["AIOTRADE_TEST_PG_DIR"]], timeout=60)


def test_two_workers_share_one_study_on_postgresql(pg_url: str) -> None:
    import uuid

    import sqlalchemy

    # A new database per run, so a reused server (CI's $AIOTRADE_TEST_PG_URL) starts from no study.
    db = f"t_{uuid.uuid4().hex[:8]}"
    admin = sqlalchemy.create_engine(
        pg_url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as c:
        c.execute(sqlalchemy.text(f"CREATE DATABASE {db}"))
    admin.dispose()
    url = pg_url.rsplit("/", 1)[0] + f"/{db}"
    _run_workers(url, n_each=30)
    _assert_no_duplicates_or_losses(url, expected=60)
