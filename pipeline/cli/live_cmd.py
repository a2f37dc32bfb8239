"""`aiotrade live` (paper by default, real orders only when asked twice, or a replay) and `aiotrade status`.

The `live` package is imported inside the command functions only: import-linter allows nothing else
to import it, and `aiotrade --help` stays fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from pipeline.cli.app import ConfigOpt, app, load
from pipeline.cli.console import make_console

_out = make_console()


@app.command()
def live(
    config: ConfigOpt = None,
    real: Annotated[bool, typer.Option("--live", help="Send REAL orders (needs API keys and a confirmation).")] = False,
    yes: Annotated[bool, typer.Option("--yes-i-understand", help="Confirm real orders without the typed prompt.")] = False,
    static: Annotated[bool, typer.Option("--static", help="Trade the config's strategy; no model needed.")] = False,
    replay: Annotated[Path | None, typer.Option(help="Replay this candle store through the emulator instead.")] = None,
    from_: Annotated[str | None, typer.Option("--from", help="Replay start (ISO UTC date/time or epoch ms).")] = None,
    to: Annotated[str | None, typer.Option("--to", help="Replay end, exclusive (ISO UTC or epoch ms).")] = None,
    state_db: Annotated[Path | None, typer.Option(help="State database (default: live.state_db; replay: "
                                                       "user_data/replay.db, recreated each run).")] = None,
    json_logs: Annotated[bool | None, typer.Option("--json-logs/--text-logs", help="One JSON object per log line.")] = None,
    follow_exchange_clock: Annotated[bool, typer.Option(
        help="Take time from the exchange (an emulator with a virtual clock), not this computer.")] = False,
) -> None:
    """Trade every configured pair at each closed candle: paper by default; --live for real orders; --replay offline."""
    import logging

    from live.logs import setup_logging
    from pipeline.cli.logs import hand_over

    cfg = load(config)
    # Every log line of a run in the runner's format (text or JSON), the other libraries' too: the
    # CLI's own handler steps aside. A replay prints its summary; its per-order lines would be
    # thousands: warnings only.
    hand_over()
    setup_logging(cfg.live.json_logs if json_logs is None else json_logs,
                  logging.WARNING if replay is not None else logging.INFO)
    if replay is not None:
        _replay(cfg, replay, from_, to, state_db, static)
        return
    if from_ or to:
        from core.errors import ConfigError

        raise ConfigError("--from/--to only apply to a replay", "add --replay DATA, or drop --from/--to")
    from live.app import LiveOptions, build_runner, run_until_signalled

    opts = LiveOptions(live=real, confirmed=yes, static=static, state_db=str(state_db) if state_db else None,
                       follow_exchange_clock=follow_exchange_clock)
    if cfg.exchange.mode == "live" and not real:
        _out.print("[yellow]exchange.mode = live in the config, but --live was not given: paper trading[/]")
    runner = build_runner(cfg, opts, confirm=_typed_confirmation(cfg.exchange.name))
    mode = "LIVE (real orders)" if runner.mode == "live" else "paper"
    _out.print(f"aiotrade live: {mode} on {cfg.exchange.name}, pairs {', '.join(cfg.market.pairs)}, "
               f"policy {runner.active.version}; state in {runner.store.path}; Ctrl-C stops after the current cycle")
    stats = run_until_signalled(runner)
    _out.print(f"stopped after {stats.bars} bars ({stats.retries} retried exchange errors)")


def _typed_confirmation(exchange: str) -> Any:
    def ask(question: str) -> bool:
        if not sys.stdin.isatty():
            return False
        answer = typer.prompt(question, default="", show_default=False)
        return bool(answer.strip().lower() == exchange)

    return ask


def _replay(cfg: Any, data: Path, from_: str | None, to: str | None, state_db: Path | None, static: bool) -> None:
    import time

    from core.errors import ConfigError
    from pipeline.download import parse_time_ms

    if not from_ or not to:
        raise ConfigError("a replay needs --from and --to", "e.g. --from 2023-02-01 --to 2023-03-01")
    start_ms, end_ms = parse_time_ms(from_, "--from"), parse_time_ms(to, "--to")
    from live.replay_session import replay_summary, run_replay_cli

    t0 = time.perf_counter()
    result = run_replay_cli(cfg, data, start_ms, end_ms, state_db, static)
    wall = time.perf_counter() - t0
    summary = replay_summary(result)
    table = Table(title=f"replay {from_} .. {to}: {summary['bars']} bars in {wall:.1f} s "
                        f"({summary['bars'] / max(wall, 1e-9):.0f} bars/s), policy {summary['policy']}")
    for col in ("pair", "fills", "open orders", "cash", "inventory", "equity", "return %"):
        table.add_column(col, justify="right" if col != "pair" else "left")
    for p in summary["pairs"]:
        table.add_row(p["pair"], str(p["fills"]), str(p["open_orders"]), f"{p['cash_quote']:.2f}",
                      f"{p['inventory_base']:.8g}", f"{p['equity_quote']:.2f}", f"{p['return_pct']:+.2f}")
    _out.print(table)
    _out.print(f"exchange balances at the end: {summary['venue_balances']}")
    _out.print(f"state database: {summary['state_db']} (inspect with `aiotrade status --state-db ...`)")


@app.command()
def status(
    config: ConfigOpt = None,
    state_db: Annotated[Path | None, typer.Option(help="State database (default: live.state_db).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Per pair: regime, parameters, open orders, inventory, PnL and policy version (safe while the runner runs)."""
    from live.status import read_status

    cfg = load(config)
    st = read_status(state_db or Path(cfg.live.state_db))
    if as_json:
        from dataclasses import asdict

        print(json.dumps({**asdict(st), "pairs": [{**asdict(p), "pnl_quote": p.pnl_quote} for p in st.pairs]},
                         indent=1, default=str))
        return
    _print_status(st)


def _print_status(st: Any) -> None:
    import time

    from rich.panel import Panel

    r = st.runner
    beat = int(r.get("heartbeat_ms") or 0)
    age = f"{(time.time() * 1000 - beat) / 1000:.0f}s ago" if beat else "never"
    _out.print(f"runner: [bold]{r.get('runner_state') or 'unknown'}[/] (heartbeat {age}), mode {r.get('mode') or '?'}, "
               f"exchange {r.get('exchange') or '?'}, policy {r.get('policy_version') or '?'}; state {st.db_path}",
               highlight=False)
    for p in st.pairs:
        pnl = "-" if p.pnl_quote is None else f"{p.pnl_quote:+.2f} (realized {p.realized_pnl_quote:+.2f}, " \
                                               f"fees {p.fees_quote:.2f})"
        params = ", ".join(f"{k}={v}" for k, v in p.params.items() if k not in ("regime", "engine"))
        lines = [
            f"regime [bold]{p.regime}[/] (model says {p.predicted}, p={p.probability or 0:.2f}); "
            f"engine {p.params.get('engine', '-')}",
            f"params {params or '-'}",
            f"inventory {p.inventory_base:.8g}, avg entry {'-' if p.avg_entry is None else f'{p.avg_entry:.6g}'}, "
            f"cash {p.cash_quote:.2f}, equity {'-' if p.equity_quote is None else f'{p.equity_quote:.2f}'}",
            f"PnL {pnl}; {p.n_fills} fills; policy {p.policy_version or '-'}",
        ]
        if p.paused:
            lines.append(f"[yellow]entries paused: {p.paused}[/]")
        table = Table(show_header=True, box=None, pad_edge=False)
        for col in ("side", "role", "price", "amount", "filled", "status"):
            table.add_column(col)
        for o in p.open_orders:
            table.add_row(o["side"], o["role"], f"{o['price']:.8g}", f"{o['amount']:.8g}", f"{o['filled']:.8g}",
                          o["status"])
        lines.append(f"open orders: {len(p.open_orders)}")
        _out.print(Panel("\n".join(lines), title=p.pair, expand=False), highlight=False)
        if p.open_orders:
            _out.print(table)
    if st.events:
        _out.print("recent events:")
        for e in st.events[:10]:
            _out.print(f"  [{e['level']}] {e['kind']}: {e['message']}", highlight=False, markup=False)
