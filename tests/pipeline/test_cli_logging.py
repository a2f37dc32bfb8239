"""Library log records in the CLI: each shown once (no second, bare copy from Python's last-resort
handler), as `warning: text`; what a command prints itself is not shown again."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest

from pipeline.cli.logs import ConsoleHandler, cli_logging, hand_over, printed_here
from tests.conftest import REPO_ROOT

SAMPLE = REPO_ROOT / "pipeline" / "sample_data"
NEEDLE = "every grid round trip loses money"


def _flat(text: str) -> str:
    return " ".join(text.split())  # the console wraps long lines off a terminal


def test_backtest_prints_the_grid_fee_warning_once_across_stdout_and_stderr(tmp_path):
    """A real process: under pytest the root logger has pytest's handlers, so the last-resort
    handler that printed the second copy never runs in-process."""
    if not (SAMPLE / "binance" / "BTC_USDT" / "5m.parquet").is_file():
        pytest.skip("the bundled sample store is missing")
    cfg = tmp_path / "fine.toml"
    cfg.write_text("[strategy.grid]\nlevels = 12\nrange_atr_mult = 3.0\n")
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "COLUMNS")}
    p = subprocess.run([sys.executable, "-m", "pipeline.cli.main", "backtest", "-c", str(cfg), "--store", str(SAMPLE),
                        "-p", "BTC/USDT", "--from", "2023-02-01", "--to", "2023-02-04", "--out", str(tmp_path / "bt")],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    out, err = _flat(p.stdout), _flat(p.stderr)
    assert out.count(NEEDLE) == 1, p.stdout  # the CLI's own line, below the tables
    assert "warning: BTC/USDT: strategy.grid.range_atr_mult (range +/-3 x ATR(14), 12 levels)" in out
    assert err.count(NEEDLE) == 0, p.stderr
    assert (out + err).count(NEEDLE) == 1


def test_a_library_warning_is_shown_once_as_a_warning(capsys):
    with cli_logging():
        logging.getLogger("core.candles").warning("floored %d off-grid stamp(s)", 3)
        logging.getLogger("some.lib").info("chatter below WARNING stays hidden")
    err = capsys.readouterr().err
    assert err.splitlines() == ["warning: floored 3 off-grid stamp(s)"]
    assert not [h for h in logging.getLogger().handlers if isinstance(h, ConsoleHandler)], "removed afterwards"


def test_printed_here_skips_only_that_logger_up_to_its_level(capsys, caplog):
    with cli_logging():
        with printed_here("pipeline.backtest"):
            logging.getLogger("pipeline.backtest").warning("printed by the command")
            logging.getLogger("pipeline.backtest").error("an unexpected error")
            logging.getLogger("core.candles").warning("someone else's warning")
        logging.getLogger("pipeline.backtest").warning("outside the block")
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["error: an unexpected error", "warning: someone else's warning", "warning: outside the block"]
    # other handlers (here pytest's) still receive the skipped record
    assert "printed by the command" in [r.getMessage() for r in caplog.records]


def test_hand_over_removes_the_cli_handler(capsys):
    with cli_logging():
        hand_over()
        assert not [h for h in logging.getLogger().handlers if isinstance(h, ConsoleHandler)]
        logging.getLogger("x").warning("goes to whatever the caller installed")
    assert capsys.readouterr().err == ""
