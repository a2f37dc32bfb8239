"""`aiotrade ui`: the lean MLflow UI on loopback shows the training run, its metrics, artifacts, child
runs and the registered policy with its champion alias (through the server's REST API)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from pipeline.ui import LOOPBACK, free_port, start_ui, stop_ui, ui_command, wait_ready
from tests.pipeline.tiny_policy import config_file, tiny_config, train_policy

REPO = Path(__file__).resolve().parents[2]


def _get(base: str, endpoint: str, **query: object) -> dict:
    url = f"{base}{endpoint}?{urllib.parse.urlencode(query)}" if query else f"{base}{endpoint}"
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())


def _post(base: str, path: str, body: dict) -> dict:
    req = urllib.request.Request(f"{base}{path}", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def test_the_command_is_lean_and_refuses_a_remote_store() -> None:
    cmd = ui_command("sqlite:////tmp/x/mlflow.db", LOOPBACK, 5123)
    assert cmd[cmd.index("--workers") + 1] == "1" and cmd[cmd.index("--host") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--default-artifact-root") + 1] == "/tmp/x"
    from core.errors import ConfigError

    with pytest.raises(ConfigError, match="already a server"):
        ui_command("http://tracking.example:5000", LOOPBACK, 5000)


@pytest.mark.slow
def test_ui_serves_the_training_run_and_the_champion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = tiny_config(tmp_path)
    ctx = train_policy(cfg)
    port = free_port()
    proc = start_ui(cfg.mlflow.tracking_uri, LOOPBACK, port, log_path=tmp_path / "ui.log")
    base = f"http://{LOOPBACK}:{port}"
    try:
        assert wait_ready(proc, f"{base}/health", timeout_s=120), (tmp_path / "ui.log").read_text()[-3000:]
        exp = _get(base, "/api/2.0/mlflow/experiments/get-by-name", experiment_name=cfg.mlflow.experiment)
        exp_id = exp["experiment"]["experiment_id"]
        runs = _post(base, "/api/2.0/mlflow/runs/search", {"experiment_ids": [exp_id], "max_results": 100})["runs"]
        train = next(r for r in runs if r["info"]["run_id"] == ctx.run_id)
        metrics = {m["key"]: m["value"] for m in train["data"]["metrics"]}
        assert "oos_adaptive_policy_return_pct" in metrics and "oos_buy_and_hold_return_pct" in metrics
        assert any(k.startswith("cv_lightgbm_") for k in metrics)
        children = [r for r in runs if any(t["key"] == "mlflow.parentRunId" and t["value"] == ctx.run_id
                                           for t in r["data"].get("tags", []))]
        assert sorted(r["info"]["run_name"] for r in children) == sorted(o.spec.key for o in ctx.policy.result.outcomes)
        files = {f["path"] for f in _get(base, "/api/2.0/mlflow/artifacts/list", run_id=ctx.run_id)["files"]}
        assert {"oos_table.txt", "oos_table.json", "config.json"} <= files
        tuned = next(r for r in children if not any(t["key"] == "fallback" for t in r["data"].get("tags", [])))
        plots = _get(base, "/api/2.0/mlflow/artifacts/list", run_id=tuned["info"]["run_id"], path="plots")
        assert "plots/optimization_history.png" in {f["path"] for f in plots["files"]}
        alias = _get(base, "/api/2.0/mlflow/registered-models/alias", name=cfg.mlflow.model_name, alias="champion")
        assert alias["model_version"]["version"] == ctx.policy.version == "1"
    finally:
        stop_ui(proc)
    assert proc.poll() is not None
    with pytest.raises(ProcessLookupError):  # the whole process group is gone
        os.killpg(proc.pid, 0)


@pytest.mark.slow
def test_aiotrade_ui_command_starts_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli.main", "ui", "--port", str(port), "-c",
                             str(config_file(cfg, tmp_path / "aiotrade.toml"))], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None and not any("MLflow UI:" in x for x in lines):
            time.sleep(0.2)
        assert any(f"MLflow UI: http://127.0.0.1:{port}" in x for x in lines), proc.stderr.read()[-2000:]
        with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/health", timeout=10) as r:
            assert r.status == 200
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
        reader.join(timeout=10)
        assert any("stopping the MLflow UI" in x for x in lines)
        with pytest.raises(OSError):  # nothing listens any more
            urllib.request.urlopen(f"http://{LOOPBACK}:{port}/health", timeout=2)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
