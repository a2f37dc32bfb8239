"""`aiotrade ui`: the MLflow UI on loopback against the configured store, started lean.

Lean means one uvicorn worker and MLflow's background job runner off (MLFLOW_SERVER_ENABLE_JOB_EXECUTION
=false): ~0.5 GB and ~8 s to the first answer here, instead of 16 processes and ~2.7 GB with the defaults.
The server runs in its own process group (setsid) so stopping it stops every child it spawned.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from core.errors import ConfigError

LOOPBACK = "127.0.0.1"


def tracking_uri(configured: str) -> str:
    """MLFLOW_TRACKING_URI wins over the config (the same rule as models.registry)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or configured


def artifact_root_for(uri: str) -> str | None:
    """Artifacts of experiments created from the UI go beside a local SQLite store, like the CLI's."""
    if uri.startswith("sqlite:///"):
        db = Path(uri.removeprefix("sqlite:///"))
        return str(db.resolve().parent)
    return None


def ui_command(uri: str, host: str, port: int) -> list[str]:
    if uri.startswith(("http://", "https://", "databricks")):
        raise ConfigError(
            f"the MLflow tracking URI {uri} is already a server; there is no local store to serve",
            f"open {uri} in a browser, or unset MLFLOW_TRACKING_URI to browse the local mlruns/ store",
        )
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", host, "--port", str(port)]
    cmd += ["--workers", "1"]
    root = artifact_root_for(uri)
    if root:
        cmd += ["--default-artifact-root", root]
    return cmd


def check_port_free(host: str, port: int) -> None:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError as e:
            raise ConfigError(
                f"cannot serve the MLflow UI on {host}:{port}: {e.strerror or e}",
                "choose another port with --port (or stop what listens there)",
            ) from None


def free_port(host: str = LOOPBACK) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def start_ui(uri: str, host: str = LOOPBACK, port: int = 5000, log_path: Path | None = None) -> subprocess.Popen:
    """Start the server in a new session; the caller stops it with `stop_ui`."""
    check_port_free(host, port)
    cmd = ui_command(uri, host, port)
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    if log_path is None:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    with open(log_path, "ab") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def wait_ready(proc: subprocess.Popen, url: str, timeout_s: float = 90.0) -> bool:
    """True once `GET url` answers 200; False if the process died or the time ran out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 - loopback URL we built
                if r.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    return False


def stop_ui(proc: subprocess.Popen, timeout_s: float = 20.0) -> None:
    """TERM the whole process group, then KILL what is left after `timeout_s`."""
    if proc.poll() is not None:
        return
    try:
        pgid = os.getpgid(proc.pid)
    except ProcessLookupError:
        return
    os.killpg(pgid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(pgid, signal.SIGKILL)
        proc.wait(timeout=5)
    # Children of the group may outlive the leader briefly: make sure none is left.
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
