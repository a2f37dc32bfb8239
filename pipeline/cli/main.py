"""Entry point: registers every command module on `app` and turns our errors into one clear message."""

from __future__ import annotations

import sys

from rich.markup import escape

# Command modules register themselves on `app` when imported.
from pipeline.cli import (
    backtest_cmd,  # noqa: F401
    config_cmds,  # noqa: F401
    data_cmds,  # noqa: F401
    exchange_cmds,  # noqa: F401
    live_cmd,  # noqa: F401
    quickstart_cmd,  # noqa: F401
    retrain_cmd,  # noqa: F401
    train_cmd,  # noqa: F401
    tune_cmd,  # noqa: F401
    ui_cmd,  # noqa: F401
)
from pipeline.cli.app import app
from pipeline.cli.console import make_console
from pipeline.cli.logs import cli_logging

_err = make_console(stderr=True)


def main() -> None:
    from core.errors import AIOTradeError

    try:
        with cli_logging():  # library warnings: once each, on stderr, as `warning: ...`
            app(standalone_mode=False)
    except AIOTradeError as e:
        _err.print(f"[bold red]error:[/] {escape(e.problem)}", highlight=False)
        if e.fix:
            _err.print(f"[yellow]fix:[/] {escape(e.fix)}", highlight=False)
        sys.exit(2)
    except KeyboardInterrupt:
        _err.print("[yellow]interrupted[/]")
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as e:  # click's own usage errors arrive here in non-standalone mode
        import click

        if isinstance(e, click.exceptions.Abort):
            _err.print("[yellow]aborted[/]")
            sys.exit(1)
        if isinstance(e, click.ClickException):
            e.show()
            sys.exit(e.exit_code)
        raise


if __name__ == "__main__":
    main()
