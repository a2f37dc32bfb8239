"""Run the benchmarks: `python -m benchmarks` (all) or `python -m benchmarks store backtest` (some).

Each `benchmarks/bench_<name>.py` defines `main() -> None`, which prints its figures and the ratio to
its reference. Nothing here is a test: targets are read by people, not asserted.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
from pathlib import Path


def _available() -> list[str]:
    here = Path(__file__).parent
    return sorted(m.name.removeprefix("bench_") for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))


def main(argv: list[str]) -> int:
    names = argv or _available()
    unknown = [n for n in names if n not in _available()]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(_available())}", file=sys.stderr)
        return 2
    for name in names:
        print(f"\n=== benchmark: {name}")
        t0 = time.perf_counter()
        importlib.import_module(f"benchmarks.bench_{name}").main()
        print(f"=== {name} done in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
