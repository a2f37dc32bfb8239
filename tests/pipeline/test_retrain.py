"""`aiotrade retrain`: the promotion gate both ways, a killed retrain, the lock, the schedule, the download skip.

The challenger is a real (tiny) `aiotrade train` run. To make the gate's outcome certain without
rigging it, the challenger is made flat (tuning.min_trades is unreachable, so every regime pauses and
its score is exactly 0), and the champion is a bundle whose one parameter set clearly wins or clearly
loses on the held-back window: a DCA taking 0.3% profits where the sample rises (January 2023), and a
long DCA averaging down with a 5% target where the sample falls (late February to 10 March). The
tests check those signs first, so a changed engine cannot make them pass for the wrong reason.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest

from core.config import Config, DcaConfig
from core.errors import ConfigError
from models.policy_bundle import alias_version
from pipeline.retrain import RetrainLock, download_new_candles, gate, parse_schedule, retrain_once, state_dir
from strategies.policy import RegimeParams
from tests.pipeline.tiny_policy import FALLING, RISING, config_file, register_bundle, tiny_config

REPO = Path(__file__).resolve().parents[2]
WINNER = DcaConfig(base_order_quote=50.0, safety_order_quote=50.0, max_safety_orders=2, price_deviation_pct=1.0,
                   take_profit_pct=0.3)
LOSER = DcaConfig(base_order_quote=40.0, safety_order_quote=40.0, max_safety_orders=4, price_deviation_pct=1.0,
                  take_profit_pct=5.0)


@pytest.fixture()
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # nothing can land in the repository's mlruns/
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


def register_champion(cfg: Config, dca: DcaConfig) -> str:
    """A bundle that runs `dca` in every regime, registered and aliased as the champion (version 1)."""
    return register_bundle(cfg, {r: RegimeParams(engine="dca", dca=dca) for r in range(4)})


def _version_tags(cfg: Config, version: str) -> dict[str, str]:
    return mlflow.tracking.MlflowClient().get_model_version(cfg.mlflow.model_name, version).tags


def _quiet():
    from rich.console import Console

    return Console(quiet=True)


def test_gate_rule() -> None:
    assert gate(1.0, 1.0, 0.0)  # not worse: promote
    assert gate(0.8, 1.0, 0.25) and not gate(0.7, 1.0, 0.25)
    assert not gate(-0.1, 0.0, 0.0)


def test_schedule_must_be_cron() -> None:
    assert str(parse_schedule("0 3 * * *").fields[5]) == "3"  # hour field
    with pytest.raises(ConfigError) as e:
        parse_schedule("every day at 3")
    assert "is not a cron expression" in e.value.problem and "0 3 * * *" in (e.value.fix or "")
    out = subprocess.run([sys.executable, "-m", "pipeline.cli.main", "retrain", "--schedule", "61 * * * *"],
                         capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 2 and "'61 * * * *' is not a cron expression" in out.stderr
    assert "Traceback" not in out.stderr


def test_a_second_retrain_is_refused_while_one_runs(root: Path) -> None:
    cfg = tiny_config(root)
    with RetrainLock(state_dir(cfg) / "retrain.lock"):
        with pytest.raises(ConfigError, match=rf"another retrain is running \(pid {os.getpid()} since"):
            retrain_once(cfg, _quiet(), download=False)
    with RetrainLock(state_dir(cfg) / "retrain.lock"):  # released: free again
        pass


def test_unreachable_exchange_skips_the_download_with_a_reason(root: Path) -> None:
    cfg = tiny_config(root)
    cfg = Config.model_validate({**cfg.model_dump(mode="json"),
                                 "exchange": {"base_url": "http://127.0.0.1:1", "timeout_s": 2}})
    note = download_new_candles(cfg)
    assert note.startswith("download skipped: ") and len(note) > len("download skipped: ")


@pytest.mark.slow
def test_a_worse_challenger_keeps_the_champion(root: Path) -> None:
    cfg = tiny_config(root, *RISING, min_trades=10**9)
    champion = register_champion(cfg, WINNER)
    o = retrain_once(cfg, _quiet(), download=False)
    assert o.champion_score is not None and o.champion_score > 0, "precondition: the champion wins here"
    assert o.challenger_score == 0.0, "precondition: the challenger pauses every regime"
    assert not o.promoted and "kept the champion" in o.reason
    assert alias_version(cfg.mlflow.model_name, cfg.mlflow.alias) == champion == "1"
    tags = _version_tags(cfg, o.challenger_version)
    assert o.challenger_version == "2" and tags["aiotrade.status"] == "rejected"
    assert "worse by more than the margin" in tags["aiotrade.gate_reason"]
    gate_runs = mlflow.search_runs(filter_string="tags.mlflow.runName = 'retrain gate'", search_all_experiments=True)
    assert len(gate_runs) == 1 and gate_runs.iloc[0]["tags.aiotrade.retrain.decision"] == "kept champion"
    assert gate_runs.iloc[0]["metrics.champion_score"] == pytest.approx(o.champion_score)
    train_run = mlflow.get_run(o.run_id)  # the challenger's train run says what became of it
    assert train_run.data.tags["aiotrade.retrain.decision"] == "kept champion"


@pytest.mark.slow
def test_a_better_challenger_moves_the_alias(root: Path) -> None:
    cfg = tiny_config(root, *FALLING, min_trades=10**9)
    register_champion(cfg, LOSER)
    o = retrain_once(cfg, _quiet(), download=False)
    assert o.champion_score is not None and o.champion_score < 0, "precondition: the champion loses here"
    assert o.challenger_score == 0.0
    assert o.promoted and o.reason.startswith("promoted")
    assert alias_version(cfg.mlflow.model_name, cfg.mlflow.alias) == o.challenger_version == "2"
    assert _version_tags(cfg, "2")["aiotrade.status"] == "champion"


@pytest.mark.slow
def test_a_retrain_killed_mid_way_leaves_the_alias_where_it_was(root: Path) -> None:
    cfg = tiny_config(root)
    champion = register_champion(cfg, WINNER)
    status = state_dir(cfg) / "retrain.status.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli.main", "retrain", "--once", "--no-download",
         "-c", str(config_file(cfg, root / "aiotrade.toml"))],
        cwd=root, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    stage = None
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if status.exists():
            stage = json.loads(status.read_text())["stage"]
            if stage == "registered":  # the new version exists; the gate has not run
                proc.send_signal(signal.SIGKILL)
                break
        time.sleep(0.01)
    proc.wait(timeout=30)
    assert stage == "registered" and proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    assert alias_version(cfg.mlflow.model_name, cfg.mlflow.alias) == champion
    assert _version_tags(cfg, "2")["aiotrade.status"] == "candidate"  # registered, never promoted
    with RetrainLock(state_dir(cfg) / "retrain.lock"):  # the kernel released the dead process's lock
        pass
