"""`aiotrade download` (candles into the store) and `aiotrade emulator` (the loopback exchange)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.app import ConfigOpt, app, load
from pipeline.cli.console import make_console

_out = make_console()
_err = make_console(stderr=True)


def _split(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


class _RichProgress:
    """The downloader's progress sink as a rich progress bar, one task per dataset."""

    def __init__(self, progress) -> None:  # rich.progress.Progress, imported lazily
        self._progress = progress
        self._tasks: dict[str, int] = {}

    def begin(self, key: str, total: int) -> None:
        self._tasks[key] = self._progress.add_task(key, total=total)

    def advance(self, key: str, done: int) -> None:
        self._progress.update(self._tasks[key], completed=done)


@app.command()
def download(
    exchange: Annotated[
        str | None, typer.Option(help="binance or bitget (default: config exchange.name).")
    ] = None,
    pairs: Annotated[
        str | None,
        typer.Option(help="Comma-separated, e.g. BTC/USDT,ETH/USDT (default: config market.pairs)."),
    ] = None,
    timeframes: Annotated[
        str | None, typer.Option(help="Comma-separated, e.g. 1m,5m (default: config market.base_timeframe).")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(help="First candle, ISO date/time (UTC) or epoch ms; needed when nothing is stored."),
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Stop before this time (default: the last closed candle).")
    ] = None,
    base_url: Annotated[
        str | None, typer.Option(help="REST host to use instead of the exchange's, e.g. the emulator's URL.")
    ] = None,
    store: Annotated[
        Path | None, typer.Option(help="Candle store folder (default: config data.store_dir).")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Download closed candles into the store: paginated, incremental, retried, resumable."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from core.candles import fmt_ts
    from pipeline.download import parse_time_ms, run_download

    cfg = load(config)
    name = (exchange or cfg.exchange.name).strip().lower()
    pair_list = [p.upper() for p in _split(pairs)] if pairs else list(cfg.market.pairs)
    tf_list = _split(timeframes) if timeframes else [cfg.market.base_timeframe]
    since_ms = parse_time_ms(since, "--since") if since else None
    until_ms = parse_time_ms(until, "--until") if until else None
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=_err, transient=False) as bar:
        results = run_download(
            name,
            pair_list,
            tf_list,
            since_ms,
            until_ms,
            str(store or cfg.data.store_dir),
            base_url=base_url or cfg.exchange.base_url,
            timeout_s=cfg.exchange.timeout_s,
            off_grid=cfg.data.off_grid,
            progress=_RichProgress(bar),
        )
    for r in results:
        resumed = f", resumed after {fmt_ts(r.resumed_after_ms)}" if r.resumed_after_ms is not None else ""
        _out.print(
            f"{name} {r.pair} {r.timeframe}: +{r.added} candles in {r.pages} pages{resumed}; "
            f"newest stored {fmt_ts(r.last_ts)}",
            soft_wrap=True,
        )


@app.command()
def emulator(
    data: Annotated[
        Path, typer.Option(help="Candle-store folder to serve (<exchange>/<BASE>_<QUOTE>/<tf>.parquet).")
    ],
    port: Annotated[
        int, typer.Option(help="TCP port on 127.0.0.1 (0 = any free port).", min=0, max=65535)
    ] = 8765,
    speed: Annotated[
        float, typer.Option(help="Virtual seconds per real second (0 = frozen clock).", min=0)
    ] = 1.0,
    start: Annotated[
        str | None, typer.Option(help="Virtual start time, ISO (UTC) or epoch ms (default: end of the data).")
    ] = None,
    source: Annotated[
        str | None, typer.Option(help="Which exchange's datasets to serve (default: binance if stored).")
    ] = None,
    markets: Annotated[
        Path | None,
        typer.Option(help="TOML with markets.<SYMBOL> tables: tick_size/lot_size/min_qty/min_notional."),
    ] = None,
    accounts: Annotated[
        Path | None,
        typer.Option(help="TOML with accounts.<name> tables (key, secret, passphrase, balances): also serve trading."),
    ] = None,
) -> None:
    """Serve stored candles as Binance spot (/api/v3) and Bitget v2 spot (/api/v2) on loopback."""
    from core.candles import fmt_ts
    from exchange.emulator import EmulatorServer, VirtualClock, default_providers
    from exchange.emulator.loading import state_from_store
    from exchange.emulator.markets import load_market_overrides
    from pipeline.download import parse_time_ms

    clock = VirtualClock(parse_time_ms(start, "--start"), speed=speed) if start else None
    state = state_from_store(
        data, source_exchange=source, clock=clock, market_overrides=load_market_overrides(markets)
    )
    if clock is None:
        state.clock.set_speed(speed)
    providers = default_providers()
    if accounts is not None:  # the trading endpoints (orders, balances, signatures) for these accounts
        from exchange.emulator.accounts import load_accounts
        from exchange.emulator.trading import install_trading, trading_providers

        install_trading(state, load_accounts(accounts))
        providers += trading_providers()
    server = EmulatorServer(state, port=port, providers=providers)
    for m in state.snapshot()["markets"].values():
        _out.print(
            f"  {m['pair']:<12} {', '.join(m['timeframes']):<16} tick {m['tick_size']} lot {m['lot_size']} "
            f"min notional {m['min_notional']}"
        )
    _out.print(f"clock at {fmt_ts(state.now_ms())}, speed x{speed:g}")
    # The URL line is what scripts and tests wait for: keep it last and flushed.
    print(
        f"emulator listening on {server.url} (binance /api/v3, bitget /api/v2); Ctrl-C stops it", flush=True
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
