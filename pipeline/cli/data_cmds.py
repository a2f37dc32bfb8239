"""`aiotrade import PATH`, `aiotrade data list` and `aiotrade data check`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.app import ConfigOpt, app, load
from pipeline.cli.console import make_console
from pipeline.cli.logs import printed_here

data_app = typer.Typer(help="List and check the stored candles.", no_args_is_help=True)
app.add_typer(data_app, name="data")
_out = make_console()


@app.command("import")
def import_cmd(
    path: Annotated[Path, typer.Argument(help="A candle file, or a folder: every candle file in it.")],
    exchange: Annotated[str | None, typer.Option(help="Store under this exchange (default: [exchange] name).")] = None,
    pair: Annotated[str | None, typer.Option(help="e.g. BTC/USDT (default: from the file name; for a folder: only that pair).")] = None,
    timeframe: Annotated[str | None, typer.Option(help="e.g. 5m (default: from the file name; for a folder: only that timeframe).")] = None,
    off_grid: Annotated[str | None, typer.Option(help="floor | reject off-grid stamps (default: [data] off_grid).")] = None,
    config: ConfigOpt = None,
) -> None:
    """Import candles: freqtrade JSON/feather, Binance kline CSV, or a CSV with a header."""
    import difflib
    from typing import get_args

    from core.config import ExchangeConfig
    from core.errors import ConfigError
    from core.store import CandleStore
    from pipeline.importers import describe_units, import_path

    cfg = load(config)
    exchange = exchange or cfg.exchange.name
    known = get_args(ExchangeConfig.model_fields["name"].annotation)
    if exchange not in known:
        close = difflib.get_close_matches(exchange, known, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise ConfigError(f"unknown exchange {exchange!r}", f"{hint}use --exchange {' or --exchange '.join(known)}")
    policy = off_grid or cfg.data.off_grid
    if policy not in ("floor", "reject"):
        raise ConfigError(f"--off-grid {policy!r} is not allowed", "use --off-grid floor or --off-grid reject")
    with printed_here("core.candles"):  # the report below says the same, next to its file
        outcome = import_path(CandleStore(cfg.data.store_dir), path, exchange, pair, timeframe, policy)
    for prep, res in zip(outcome.prepared, outcome.written, strict=True):
        change = f"{res.added} new, {res.replaced} replaced" if res.changed else "already stored, unchanged"
        _out.print(f"[green]{prep.parsed.path.name}[/] ({prep.parsed.fmt}) -> {res.path}: {change}; {res.rows_after} rows stored")
        _out.print(prep.report.describe(), highlight=False)
        units = describe_units(prep.parsed.converted)
        if units:
            _out.print(f"  {units}", highlight=False)
    for skipped, why in outcome.skipped:
        _out.print(f"[dim]skipped {skipped.name}: {why}[/]")


@data_app.command("list")
def list_cmd(config: ConfigOpt = None) -> None:
    """List the stored datasets with rows, span and gaps."""
    from core.store import CandleStore

    cfg = load(config)
    infos = CandleStore(cfg.data.store_dir).datasets()
    if not infos:
        _out.print(f"no candles stored under {cfg.data.store_dir}; try `aiotrade quickstart` or `aiotrade import PATH`")
        return
    _out.print(_table(infos, f"candle store {cfg.data.store_dir}"))


@data_app.command("check")
def check_cmd(config: ConfigOpt = None) -> None:
    """Validate every stored dataset (schema, order, grid, OHLC) and report gaps."""
    from core.errors import DataError
    from core.store import CandleStore

    cfg = load(config)
    infos = CandleStore(cfg.data.store_dir).datasets()
    _out.print(_table(infos, f"check of {cfg.data.store_dir}"))
    for info in infos:
        if info.report and info.report.largest_gap:
            _out.print(f"{info.path}: largest gap {info.report.largest_gap.describe()}", highlight=False)
    bad = [i for i in infos if i.error]
    for info in bad:
        _out.print(f"[red]{info.path}[/]: {info.error}", highlight=False)
    if bad:
        raise DataError(
            f"{len(bad)} of {len(infos)} dataset(s) invalid: {', '.join(str(i.path) for i in bad)}",
            "delete each invalid file and download or import it again",
        )
    _out.print(f"[green]{len(infos)} dataset(s) OK[/]")


def _table(infos, title: str):
    from rich import box
    from rich.table import Table

    from core.candles import fmt_ts

    table = Table(
        title=title, caption="times UTC; gaps: missing candles in n gaps",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        padding=(0, 1, 0, 0),
    )
    for col in ("exchange", "pair", "tf", "rows", "first", "last", "gaps"):
        table.add_column(col, justify="right" if col == "rows" else "left", no_wrap=col != "gaps")
    for i in infos:
        r = i.report
        if r is None:
            table.add_row(i.exchange, i.pair, i.timeframe, "-", "-", "-", "[red]INVALID[/]")
        else:
            first, last = fmt_ts(r.first_ts, utc_suffix=False), fmt_ts(r.last_ts, utc_suffix=False)
            table.add_row(i.exchange, i.pair, i.timeframe, f"{r.rows:,}", first, last, r.gap_brief())
    return table
