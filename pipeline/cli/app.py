"""The typer application every command module registers on, and the shared --config option."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="aiotrade",
    help="AIOTrade: regime-aware grid and averaging (DCA) autopilot for crypto spot on Binance and Bitget.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML config file (default: ./aiotrade.toml if present, else embedded defaults)."),
]


def load(config: Path | None):  # -> core.config.Config, imported lazily to keep --help fast
    from core.config import load_config

    return load_config(config)
