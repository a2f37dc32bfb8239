"""Fill an `EmulatorState` from a candle-store folder (`<root>/<exchange>/<BASE>_<QUOTE>/<tf>.parquet`).

Both venues of the emulator serve one set of candles, so the store's datasets of one *source*
exchange are loaded (default: binance when present, else the first exchange found).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.errors import ConfigError, DataError
from core.store import CandleStore
from exchange.emulator.clock import VirtualClock
from exchange.emulator.state import EmulatorState


def state_from_store(
    root: str | Path,
    *,
    source_exchange: str | None = None,
    pairs: list[str] | None = None,
    clock: VirtualClock | None = None,
    market_overrides: dict[str, dict[str, Any]] | None = None,
) -> EmulatorState:
    """Every valid dataset of `source_exchange` (optionally only `pairs`); bad files are errors."""
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(
            f"emulator data folder {root} does not exist", "pass a candle-store folder (data.store_dir)"
        )
    store = CandleStore(root)
    infos = store.datasets()
    exchanges = sorted({i.exchange for i in infos})
    if not exchanges:
        raise DataError(
            f"no candle datasets under {root} (expected <exchange>/<BASE>_<QUOTE>/<tf>.parquet)",
            "download or import candles first (`aiotrade download` / `aiotrade import`), or pass another --data",
        )
    source = source_exchange or ("binance" if "binance" in exchanges else exchanges[0])
    if source not in exchanges:
        raise ConfigError(
            f"no datasets of {source!r} under {root}", f"exchanges found: {', '.join(exchanges)}"
        )
    chosen = [i for i in infos if i.exchange == source and (pairs is None or i.pair in pairs)]
    broken = [i for i in chosen if i.error]
    if broken:
        raise DataError(
            f"cannot serve {broken[0].path}: {broken[0].error}", "fix or delete that file, or pass --pairs"
        )
    frames = {(i.pair, i.timeframe): store.load(source, i.pair, i.timeframe) for i in chosen}
    if not frames:
        raise DataError(
            f"no datasets of {source} for pairs {pairs} under {root}", "check --pairs against the folder"
        )
    return EmulatorState.from_frames(frames, clock=clock, market_overrides=market_overrides)
