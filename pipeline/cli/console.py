"""The CLI's rich consoles.

Why not plain `Console()`: when output goes to a pipe, a log file or CI, rich cannot ask the terminal
for its width and wraps every table at 80 columns, which folds the fold table and the backtest
summary into unreadable cells. Off a terminal we use a wide fixed width instead; `COLUMNS` in the
environment still wins, as rich documents.
"""

from __future__ import annotations

import os

from rich.console import Console

# Wide enough for the widest table the CLI prints (the out-of-sample table, ~150 columns).
PIPE_WIDTH = 160


def make_console(stderr: bool = False) -> Console:
    console = Console(stderr=stderr)
    if console.is_terminal or os.environ.get("COLUMNS"):
        return console
    return Console(stderr=stderr, width=PIPE_WIDTH)
