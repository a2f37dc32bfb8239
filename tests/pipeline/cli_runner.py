"""Run `aiotrade ARGS` in this process, through the CLI's own entry point and error handling."""

from __future__ import annotations

import sys

import pytest


def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *argv: str,
            width: int = 200) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `aiotrade *argv`; every CLI console printed `width` columns wide."""
    from pipeline.cli import backtest_cmd, data_cmds
    from pipeline.cli import main as cli_main

    for console in (cli_main._err, backtest_cmd._out, data_cmds._out):
        monkeypatch.setattr(console, "width", width)
    monkeypatch.setattr(sys, "argv", ["aiotrade", *argv])
    try:
        cli_main.main()
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err
