"""Library log records in a CLI run: one stderr handler, every record shown once, as `warning: text`.

Why: with no handler configured, Python's last-resort handler prints every WARNING record bare on
stderr. Several of those records are also handed back to the command, which prints them where they
belong (the backtest's grid-fee warnings under its tables, a tuning study's fallback under the studies
table), so a user saw each twice, once without saying it was a warning. `main()` wraps every command in
`cli_logging()`; a command that prints a library's records itself says so around the call with
`printed_here(logger)`: those records still reach other handlers (a user's logging config, pytest's
caplog), only this one skips them. `aiotrade live` hands the whole stream to the runner's own
formatter (`live.logs.setup_logging`: text or `--json-logs`) with `hand_over()`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from rich.text import Text

from pipeline.cli.console import make_console

HANDLER_NAME = "aiotrade-cli"
_STYLE = {logging.WARNING: "yellow", logging.ERROR: "bold red", logging.CRITICAL: "bold red"}


class _PrintedHere(logging.Filter):
    """Skips the records a command prints itself: logger name -> highest level it prints."""

    def __init__(self) -> None:
        super().__init__()
        self.loggers: dict[str, list[int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        levels = self.loggers.get(record.name)
        return not levels or record.levelno > max(levels)


class ConsoleHandler(logging.Handler):
    """`warning: text` / `error: text` on stderr through a rich console (no markup read from the text)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)  # what the last-resort handler showed: no new noise
        self.console = make_console(stderr=True)
        self.printed_here = _PrintedHere()
        self.addFilter(self.printed_here)
        self.set_name(HANDLER_NAME)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
            if record.exc_info:
                text += "\n" + logging.Formatter().formatException(record.exc_info)
            level = record.levelname.lower()
            style = _STYLE.get(record.levelno, "")
            self.console.print(Text.assemble((f"{level}:", style), " ", text), highlight=False, soft_wrap=True)
        except Exception:  # noqa: BLE001 - logging must never break the command
            self.handleError(record)


def _installed() -> ConsoleHandler | None:
    for h in logging.getLogger().handlers:
        if isinstance(h, ConsoleHandler):
            return h
    return None


@contextmanager
def cli_logging() -> Iterator[ConsoleHandler]:
    """The CLI's handler on the root logger for the duration of a command (replacing an earlier one)."""
    root = logging.getLogger()
    old = _installed()
    if old is not None:
        root.removeHandler(old)
    handler = ConsoleHandler()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


@contextmanager
def printed_here(logger: str, up_to: int = logging.WARNING) -> Iterator[None]:
    """Within the block the CLI's handler skips `logger`'s records up to level `up_to`: the command
    prints them itself. Records above `up_to` (an unexpected error) are still shown."""
    handler = _installed()
    if handler is None:  # called outside main() (a test calling a command function): nothing to skip
        yield
        return
    levels = handler.printed_here.loggers.setdefault(logger, [])
    levels.append(up_to)
    try:
        yield
    finally:
        levels.remove(up_to)
        if not levels:
            handler.printed_here.loggers.pop(logger, None)


def hand_over() -> None:
    """Remove the CLI's handler: the caller installs its own on the root logger (`aiotrade live`)."""
    handler = _installed()
    if handler is not None:
        logging.getLogger().removeHandler(handler)
