"""`aiotrade quickstart` end to end, as `make run` runs it, on a small budget: data -> train -> paper.

The default budget (400 trees, 4 folds, 200 trials per study) took 70 s of wall on 2 cores at load
average 2.7 (benchmarks/bench_tuning.py times `aiotrade train`); this test shrinks only the budgets
through a config file, so every step of the real command runs: the bundled sample is
imported, the regime model trained and registered, each regime tuned, the policy bundle registered
as champion in a fresh MLflow store, and the champion paper-traded through the live runner against
the emulator.
"""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

AIOTRADE = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "aiotrade"

SMALL = """
[model]
n_estimators = 40
cv_folds = 2
early_stopping_rounds = 10
n_jobs = 1

[tuning]
n_trials = 12
folds = 1
n_jobs = 1
"""


def test_quickstart_trains_registers_and_paper_trades(tmp_path):
    (tmp_path / "aiotrade.toml").write_text(SMALL)
    proc = subprocess.run(
        [str(AIOTRADE), "quickstart"], cwd=tmp_path, capture_output=True, text=True, timeout=900,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    for step in ("step 3/4: train", "step 4/4: paper-trade", "quickstart done"):
        assert step in out
    assert "Out-of-sample" in out and "buy and hold" in out
    # the champion is registered in the embedded store under mlruns/
    db = sqlite3.connect(tmp_path / "mlruns" / "mlflow.db")
    aliases = db.execute("select name, alias from registered_model_aliases").fetchall()
    assert ("aiotrade-policy", "champion") in aliases
    # the paper step ran the live runner over the sample's last 3 days (864 bars of 5m) for both pairs
    assert "864 bars replayed" in out
    paper_lines = [ln for ln in out.splitlines() if ln.strip().startswith(("BTC/USDT:", "ETH/USDT:"))]
    assert len(paper_lines) == 2 and all("equity" in ln for ln in paper_lines)
    assert (tmp_path / "user_data" / "replay.db").is_file()
