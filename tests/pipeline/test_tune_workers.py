"""`aiotrade tune --worker`: extra processes join a study that `aiotrade train` created (embedded journal)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import optuna
import pytest

from core.store import CandleStore
from pipeline.tuning_storage import open_storage
from tests.pipeline.tiny_policy import config_file, tiny_config, train_policy

REPO = Path(__file__).resolve().parents[2]
BUDGET = 300


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("workers")
    old = Path.cwd()
    os.chdir(root)
    saved = os.environ.pop("MLFLOW_TRACKING_URI", None)
    try:
        cfg = tiny_config(root, n_trials=6)
        ctx = train_policy(cfg, register=False)
    finally:
        os.chdir(old)
        if saved is not None:
            os.environ["MLFLOW_TRACKING_URI"] = saved
    tuned = next(o for o in ctx.policy.result.outcomes if not o.fallback)
    return root, cfg, tuned.study_name


def _tune(root: Path, cfg, *args: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "pipeline.cli.main", "tune", "-c", str(config_file(cfg, root / "aiotrade.toml")),
           "--storage", cfg.tuning.storage, *args]
    return subprocess.Popen(cmd, cwd=root, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_two_workers_join_a_study_without_duplicate_or_lost_trials(trained) -> None:
    root, cfg, name = trained
    # Started together, both pay the same start-up (imports, rebuilding the objective) and then share
    # the study; the budget is large enough that neither finishes it before the other joins.
    procs = [_tune(root, cfg, "--study", name, "--worker", "--n-trials", str(BUDGET)) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-2000:]
        assert "budget reached" in out
    study = optuna.load_study(study_name=name, storage=open_storage(cfg.tuning.storage))
    trials = study.get_trials(deepcopy=False)
    numbers = [t.number for t in trials]
    assert sorted(numbers) == list(range(len(trials))), "unique, gap-free trial numbers"
    # Each worker stops once the study holds BUDGET trials; running at once, they may overshoot by a batch.
    assert BUDGET <= len(trials) <= BUDGET + 4
    assert all(t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) for t in trials)
    assert all(t.value is not None or t.state == optuna.trial.TrialState.PRUNED for t in trials)
    by_worker = Counter(t.user_attrs["worker"] for t in trials)
    assert len(by_worker) == 3, by_worker  # the train process and both workers
    assert all(n >= 4 for n in by_worker.values()), by_worker


@pytest.mark.slow
def test_a_worker_refuses_other_candles_and_unknown_studies(trained, tmp_path: Path) -> None:
    root, cfg, name = trained
    out, err = _tune(root, cfg, "--study", "nope", "--worker").communicate(timeout=120)
    assert "study 'nope' not found" in " ".join(err.split()) and name.split(".")[0] in err
    # Another machine whose candles differ by one close: refused, nothing scored.
    other = CandleStore(tmp_path / "candles")
    df = CandleStore(cfg.data.store_dir).load("binance", "BTC/USDT", "5m")
    df.loc[len(df) // 2, "close"] *= 1.001
    df.loc[len(df) // 2, "high"] = max(df.loc[len(df) // 2, "high"], df.loc[len(df) // 2, "close"])
    other.write("binance", "BTC/USDT", "5m", df)
    before = len(optuna.load_study(study_name=name, storage=open_storage(cfg.tuning.storage)).trials)
    p = _tune(root, cfg, "--study", name, "--worker", "--n-trials", "100", "--store", str(tmp_path / "candles"))
    out, err = p.communicate(timeout=120)
    assert p.returncode == 2 and "differ from those the study was created with" in " ".join(err.split())
    assert len(optuna.load_study(study_name=name, storage=open_storage(cfg.tuning.storage)).trials) == before
