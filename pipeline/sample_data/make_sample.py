"""Rebuild the bundled sample candles from ../shared/data/ohlcv (see README.md in this folder).

    .venv/bin/python pipeline/sample_data/make_sample.py [--shared ../shared/data/ohlcv/binance]

Reads the freqtrade feather files of the MIT-licensed folder `2023_1h_5m`, keeps
2023-01-01 00:00 .. 2023-03-23 23:55 UTC (before the 2023-03-24 outage gap), validates them and
writes them fresh (not merged) through the candle store, then prints rows and sha256 per file.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

from core.candles import fmt_ts
from core.store import CandleStore
from pipeline.importers import read_candle_file

HERE = Path(__file__).resolve().parent
DEFAULT_SHARED = HERE.parents[2] / "shared" / "data" / "ohlcv" / "binance"
SOURCE_FOLDER = "2023_1h_5m"
PAIRS = ("BTC/USDT", "ETH/USDT")
TIMEFRAME = "5m"
START_MS = 1_672_531_200_000  # 2023-01-01 00:00 UTC
END_MS = 1_679_616_000_000  # 2023-03-24 00:00 UTC, exclusive: last candle 2023-03-23 23:55


def build(shared: Path, out_root: Path) -> list[tuple[Path, int, str]]:
    store = CandleStore(out_root)
    made = []
    for pair in PAIRS:
        src = shared / SOURCE_FOLDER / f"{pair.replace('/', '_')}-{TIMEFRAME}.feather"
        frame = read_candle_file(src).frame
        frame = frame[(frame["ts"] >= START_MS) & (frame["ts"] < END_MS)].reset_index(drop=True)
        target = store.path("binance", pair, TIMEFRAME)
        target.unlink(missing_ok=True)  # fresh, so the file depends on the source only
        res = store.write("binance", pair, TIMEFRAME, frame)
        report = res.report
        print(f"{target}: {report.rows} rows, {fmt_ts(report.first_ts)} .. {fmt_ts(report.last_ts)}, gaps: {report.gap_summary()}")
        made.append((target, report.rows, hashlib.sha256(target.read_bytes()).hexdigest()))
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="the binance/ folder of ../shared/data/ohlcv")
    parser.add_argument("--out", type=Path, default=HERE, help="store root to write into (default: this folder)")
    args = parser.parse_args()
    for path, rows, sha in build(args.shared, args.out):
        print(f"{sha}  {path.relative_to(args.out)}  ({rows} rows)")


if __name__ == "__main__":
    main()
