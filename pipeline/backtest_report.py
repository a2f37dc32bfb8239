"""What `aiotrade backtest` shows and logs: the summary table, the PNG plots, the MLflow run."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table

from pipeline.backtest import PairResult, _slug

# (header, metric key, format): percentages are fractions in the metrics
_COLUMNS = (
    ("total return", "total_return", "pct"),
    ("CAGR", "cagr", "pct"),
    ("max drawdown", "max_drawdown", "pct"),
    ("Sharpe", "sharpe", "num"),
    ("Sortino", "sortino", "num"),
    ("Calmar", "calmar", "num"),
    ("profit factor", "profit_factor", "num"),
    ("win rate", "win_rate", "pct"),
    ("fills", "fills", "int"),
    ("cycles", "cycles", "int"),
    ("fees", "fees_quote", "money"),
    ("turnover", "turnover_quote", "money"),
    ("time in market", "time_in_market", "pct"),
    ("longest underwater (days)", "longest_underwater_days", "num"),
    ("final inventory value", "final_inventory_value", "money"),
    ("final equity", "final_equity", "money"),
    ("rejected orders", "rejected_orders", "int"),
)
_MAX_POINTS = 4000  # plots downsample longer curves (every n-th bar) to stay quick and small


def _fmt(value: Any, kind: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    if kind == "pct":
        return f"{100 * value:.2f}%"
    if kind == "int":
        return f"{int(value):,}"
    if kind == "money":
        return f"{value:,.0f}" if abs(value) >= 10_000 else f"{value:,.2f}"
    return f"{value:.2f}"


def summary_tables(results: list[PairResult], title: str) -> list[Table]:
    """One table per pair: metrics as rows, the tested strategy first, then the baselines, so the
    comparison reads across and fits a terminal."""
    tables = []
    for res in results:
        table = Table(title=f"{title}\n{res.pair}: {len(res.candles):,} bars", header_style="bold")
        table.add_column("metric")
        for i, run in enumerate(res.runs):
            table.add_column(run.label, justify="right", style="bold" if i == 0 else None)
        for header, key, kind in _COLUMNS:
            table.add_row(header, *[_fmt(run.metrics.get(key), kind) for run in res.runs])
        tables.append(table)
    return tables


def _every(n: int) -> int:
    return max(1, n // _MAX_POINTS)


def plot_equity(res: PairResult, path: Path) -> Path:
    """Equity of every run over time; the tested policy's active regime shades the background."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ts = res.candles["ts"].to_numpy().astype("datetime64[ms]")
    step = _every(len(ts))
    fig, ax = plt.subplots(figsize=(12, 5), dpi=100)
    active = next((r.active_regime for r in res.runs if r.active_regime is not None), None)
    if active is not None:
        cmap = plt.get_cmap("tab10")
        change = np.flatnonzero(np.diff(active)) + 1
        starts = np.concatenate([[0], change])
        ends = np.concatenate([change, [len(active)]])
        seen: set[int] = set()
        for a, b in zip(starts, ends, strict=True):
            rid = int(active[a])
            if rid < 0:
                continue
            ax.axvspan(ts[a], ts[min(b, len(ts) - 1)], color=cmap(rid % 10), alpha=0.12, lw=0,
                       label=None if rid in seen else f"regime {rid}")
            seen.add(rid)
    for run in res.runs:
        ax.plot(ts[::step], run.equity[::step], lw=1.2 if run is res.runs[0] else 0.9, label=run.label)
    ax.set_title(f"{res.pair}: equity ({res.rules.symbol.partition('/')[2]})")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_fills(res: PairResult, path: Path) -> Path:
    """Close price with the tested strategy's buys and sells (at most 2,000 of each drawn)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ts = res.candles["ts"].to_numpy()
    close = res.candles["close"].to_numpy()
    step = _every(len(ts))
    fig, ax = plt.subplots(figsize=(12, 5), dpi=100)
    ax.plot(ts[::step].astype("datetime64[ms]"), close[::step], lw=0.8, color="0.3", label="close")
    fills = res.runs[0].fills
    if fills is not None and len(fills):
        for side, marker, color in (("buy", "^", "tab:green"), ("sell", "v", "tab:red")):
            f = fills[fills["side"] == side]
            f = f.iloc[:: max(1, len(f) // 2000)]
            ax.scatter(f["ts"].to_numpy().astype("datetime64[ms]"), f["price"], marker=marker, s=10, c=color,
                       label=f"{side}s ({(fills['side'] == side).sum():,})", zorder=3)
    ax.set_title(f"{res.pair}: fills of {res.runs[0].label}")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write_plots(results: list[PairResult], out_dir: Path) -> list[Path]:
    paths = []
    for res in results:
        folder = out_dir / res.pair.replace("/", "_")
        folder.mkdir(parents=True, exist_ok=True)
        paths.append(plot_equity(res, folder / "equity.png"))
        paths.append(plot_fills(res, folder / "fills.png"))
    return paths


def log_mlflow(results: list[PairResult], out_dir: Path, params: dict[str, Any], tracking_uri: str,
               experiment: str, config_hash: str) -> str:
    """One MLflow run: parameters, every metric as `<pair>.<run>.<metric>`, the output folder (trades,
    equity, summary, PNG plots) as artifacts. Returns the run id."""
    import mlflow

    from models.registry import use_store

    experiment_id = use_store(tracking_uri, experiment)
    pairs = ",".join(r.pair for r in results)
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"backtest {pairs}") as run:
        mlflow.set_tags({"aiotrade.kind": "backtest", "aiotrade.config_hash": config_hash})
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        metrics = {}
        for res in results:
            for r in res.runs:
                for key, value in r.metrics.items():
                    if isinstance(value, int | float) and math.isfinite(value):
                        metrics[f"{_slug(res.pair)}.{_slug(r.label)}.{key}"] = float(value)
        mlflow.log_metrics(metrics)
        mlflow.log_artifacts(str(out_dir))
        return str(run.info.run_id)
