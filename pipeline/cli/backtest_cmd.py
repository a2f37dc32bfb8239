"""`aiotrade backtest`: the config's strategy (or a regime policy) on stored candles, with baselines."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.app import ConfigOpt, app, load
from pipeline.cli.console import make_console
from pipeline.cli.logs import printed_here

_out = make_console()


@app.command()
def backtest(
    config: ConfigOpt = None,
    pair: Annotated[list[str] | None, typer.Option("--pair", "-p", help="Pair(s) to test (default: market.pairs).")] = None,
    from_: Annotated[str | None, typer.Option("--from", help="First candle, e.g. 2023-01-01 (UTC).")] = None,
    to: Annotated[str | None, typer.Option("--to", help="End (exclusive), e.g. 2023-07-01 (UTC).")] = None,
    timeframe: Annotated[str | None, typer.Option(help="Candles to trade on (default: market.base_timeframe).")] = None,
    exchange: Annotated[str | None, typer.Option(help="Exchange of the stored candles (default: exchange.name).")] = None,
    store: Annotated[Path | None, typer.Option(help="Candle store root (default: data.store_dir).")] = None,
    engine: Annotated[str | None, typer.Option(help="Static strategy: grid, dca or none (default: "
                                                    "strategy.engine).")] = None,
    policy: Annotated[str | None, typer.Option(help="Regime policy to test: models:/NAME@ALIAS (a registered "
                                                    "bundle: its model gives the regimes) or a TOML file (see "
                                                    "strategies/README.md; needs --regimes).")] = None,
    regimes: Annotated[Path | None, typer.Option(help="Regime per bar for --policy: Parquet/CSV with ts, regime"
                                                      "[, prob][, pair].")] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder (default: user_data/backtests/<pairs>_<span>).")] = None,
    mlflow: Annotated[bool, typer.Option("--mlflow", help="Log the run, its files and plots to MLflow.")] = False,
    plots: Annotated[bool, typer.Option(help="Write PNG plots (always with --mlflow).")] = False,
) -> None:
    """Backtest on stored candles: summary with baselines, trades and equity files, optional MLflow."""
    from rich.markup import escape

    from core.errors import ConfigError
    from pipeline.backtest import (
        BacktestRequest,
        fmt_ms,
        parse_time_ms,
        regimes_from_file,
        resolve_policy,
        run_backtest,
    )
    from pipeline.backtest import write_outputs as write_files
    from pipeline.backtest_report import log_mlflow, summary_tables, write_plots
    from pipeline.policy_backtest import bundle_regimes, is_registry_uri

    cfg = load(config)
    if engine is not None and engine not in ("grid", "dca", "none"):
        raise ConfigError(f"--engine {engine!r} is not an engine", "use grid, dca or none")
    pairs = list(pair) if pair else list(cfg.market.pairs)
    pol = label = None
    if policy is not None:
        if regimes is None and not is_registry_uri(policy):
            raise ConfigError("--policy needs a regime per bar", "pass --regimes FILE (ts, regime[, prob])")
        pol, label = resolve_policy(policy)
    elif regimes is not None:
        raise ConfigError("--regimes given without --policy", "pass the policy the regimes belong to with --policy")
    req = BacktestRequest(
        pairs=pairs, exchange=exchange or cfg.exchange.name, timeframe=timeframe or cfg.market.base_timeframe,
        start_ms=parse_time_ms(from_, "--from") if from_ else None, end_ms=parse_time_ms(to, "--to") if to else None,
        policy=pol, policy_label=f"policy {label}" if label else "policy",
        regimes=regimes_from_file(regimes) if regimes else bundle_regimes(policy) if is_registry_uri(policy) else None,
        engine=engine,
    )
    if req.start_ms is not None and req.end_ms is not None and req.start_ms >= req.end_ms:
        raise ConfigError(f"--from {from_} is not before --to {to}", "give a range whose start comes first")
    # pipeline.backtest's warnings come back in res.warnings and are printed below the tables
    with _out.status(f"backtesting {', '.join(pairs)} ({req.timeframe})"), printed_here("pipeline.backtest"):
        results = run_backtest(cfg, req, store or cfg.data.store_dir)
    span = f"{from_ or 'start'}_{to or 'end'}".replace(":", "")
    out_dir = out or Path("user_data") / "backtests" / f"{'-'.join(p.replace('/', '') for p in pairs)}_{span}"
    files = write_files(results, out_dir)
    if plots or mlflow:
        files += write_plots(results, out_dir)
    first, last = results[0].candles["ts"].iloc[[0, -1]]
    title = (f"backtest {req.exchange} {req.timeframe} {fmt_ms(first)} .. {fmt_ms(last)}, "
             f"capital {results[0].settings.capital_quote:,.2f} per pair")
    for table in summary_tables(results, title):
        _out.print(table)
    for res in results:  # after the tables, where the eye lands: this explains a 0% win rate
        for text in res.warnings:
            _out.print(f"[yellow]warning: {escape(text)}[/]")
    _out.print(f"wrote {len(files)} files to {out_dir}")
    if mlflow:
        params = {"pairs": ",".join(pairs), "exchange": req.exchange, "timeframe": req.timeframe,
                  "from": from_, "to": to, "engine": engine or cfg.strategy.engine, "policy": policy,
                  "capital_per_pair": results[0].settings.capital_quote}
        run_id = log_mlflow(results, out_dir, params, cfg.mlflow.tracking_uri, cfg.mlflow.experiment,
                            cfg.config_hash())
        _out.print(f"logged to MLflow run {run_id} (experiment {cfg.mlflow.experiment})")
