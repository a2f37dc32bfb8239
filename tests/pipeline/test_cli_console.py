"""Off a terminal the CLI's tables are not folded at rich's 80-column fallback."""

from __future__ import annotations

from rich.table import Table

from pipeline.cli.console import PIPE_WIDTH, make_console


def _wide_table() -> Table:
    table = Table("pair", "adaptive return %", "static grid return %", "static DCA return %", "buy-and-hold %")
    table.add_row("BTC/USDT", "-12.19", "-11.85", "-7.85", "-24.30")
    return table


def test_piped_output_uses_the_wide_width(monkeypatch, capsys) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    console = make_console()  # pytest captures stdout: not a terminal
    assert not console.is_terminal
    assert console.width == PIPE_WIDTH
    console.print(_wide_table())
    lines = capsys.readouterr().out.splitlines()
    # Every header sits on one line: the row with "pair" also holds the last column's header.
    header = next(line for line in lines if "pair" in line)
    assert "buy-and-hold %" in header and "static DCA return %" in header


def test_columns_in_the_environment_wins(monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    assert make_console().width == 100
    assert make_console(stderr=True).width == 100
