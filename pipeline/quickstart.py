"""The main job on the embedded defaults, as a list of steps (`aiotrade quickstart`, `make run`).

Each step is a function of one `QuickstartContext`, run in order; later work appends training,
tuning and paper trading to `STEPS` without touching the ones here. Steps are idempotent: running
the quickstart twice changes nothing the second time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table

from core.candles import fmt_ts
from core.config import Config
from core.resample import resample
from core.store import CandleStore, DatasetInfo, WriteResult
from core.timeframes import is_multiple


@dataclass(frozen=True)
class SummaryRow:
    exchange: str
    pair: str
    timeframe: str
    rows: int
    first_ts: int | None
    last_ts: int | None
    gaps: str
    resampled_rows: dict[str, int]  # higher timeframe -> closed candles built from this dataset


@dataclass
class QuickstartContext:
    config: Config
    store: CandleStore
    console: Console
    imported: list[tuple[DatasetInfo, WriteResult]] = field(default_factory=list)
    summary: list[SummaryRow] = field(default_factory=list)


Step = Callable[[QuickstartContext], None]


@contextmanager
def sample_store() -> Iterator[CandleStore]:
    """The bundled sample (pipeline/sample_data), as a read-only candle store."""
    with resources.as_file(resources.files("pipeline").joinpath("sample_data")) as root:
        yield CandleStore(Path(root))


def import_sample(ctx: QuickstartContext) -> None:
    """Merge the bundled sample candles into the configured store (no change if already there)."""
    with sample_store() as sample:
        for info in sample.datasets():
            df = sample.load(info.exchange, info.pair, info.timeframe)
            res = ctx.store.write(info.exchange, info.pair, info.timeframe, df)
            ctx.imported.append((info, res))
            change = f"{res.added} new, {res.replaced} replaced" if res.changed else "already there, unchanged"
            ctx.console.print(f"  {info.exchange} {info.pair} {info.timeframe} -> {res.path}: {change}")


def summarise(ctx: QuickstartContext) -> None:
    """Load what was imported back from the store (validated) and count its resampled candles."""
    higher = ctx.config.market.feature_timeframes
    for info, _ in ctx.imported:
        df, report = ctx.store.load_with_report(info.exchange, info.pair, info.timeframe)
        counts = {tf: len(resample(df, info.timeframe, tf)) for tf in higher if is_multiple(tf, info.timeframe)}
        ctx.summary.append(
            SummaryRow(info.exchange, info.pair, info.timeframe, report.rows, report.first_ts, report.last_ts, report.gap_brief(), counts)
        )
    ctx.console.print(summary_table(ctx.summary, higher))


def summary_table(rows: list[SummaryRow], higher: list[str]) -> Table:
    exchanges = ", ".join(sorted({r.exchange for r in rows}))
    table = Table(
        title=f"candles in the store ({exchanges})",
        caption=f"times UTC; gaps: missing candles in n gaps; {', '.join(higher)}: closed candles resampled",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        padding=(0, 1, 0, 0),
    )
    for col in ("pair", "tf", "rows", "first", "last", "gaps", *higher):
        table.add_column(col, justify="right" if col == "rows" or col in higher else "left", no_wrap=col != "gaps")
    for r in rows:
        resampled = [str(r.resampled_rows[tf]) if tf in r.resampled_rows else "-" for tf in higher]
        first, last = fmt_ts(r.first_ts, utc_suffix=False), fmt_ts(r.last_ts, utc_suffix=False)
        table.add_row(r.pair, r.timeframe, str(r.rows), first, last, r.gaps, *resampled)
    return table


STEPS: list[tuple[str, Step]] = [
    ("import the bundled sample candles", import_sample),
    ("summarise the stored candles", summarise),
]


def run_quickstart(config: Config, console: Console, steps: list[tuple[str, Step]] | None = None) -> QuickstartContext:
    ctx = QuickstartContext(config=config, store=CandleStore(config.data.store_dir), console=console)
    todo = STEPS if steps is None else steps
    for n, (title, step) in enumerate(todo, start=1):
        console.print(f"[bold]step {n}/{len(todo)}: {title}[/]")
        step(ctx)
    return ctx
