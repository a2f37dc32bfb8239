"""`engine_jit`: how every numba function of the engine's hot path is compiled.

`numba.njit(cache=True)` plus `_nrt=False`: no reference counting. numba counts references of every
array a function takes (an incref at entry, a decref at exit, also for functions inlined with
`inline="always"`), through calls the optimiser may not remove or inline. `borrow.borrowed` already
made those calls cheap in the simulator's loop (a null owner: no atomic instruction), but the calls
stayed: about forty per bar with a fill, each clobbering the caller's registers. Measured on the
one-year benchmark (`python -m benchmarks backtest`): the grid + DCA workload ran in
~28 ms with the calls and ~21 ms without.

Safe here because no engine function allocates or returns an array: each works on arrays its caller
owns (numba refuses to compile an allocation without the runtime, so a mistake fails loudly).
Functions that allocate (e.g. `regime.active_regimes`) keep the plain `numba.njit`.
"""

from __future__ import annotations

from typing import Any

import numba as nb


def engine_jit(**options: Any) -> Any:
    """`numba.njit(cache=True, _nrt=False, **options)` as a decorator: `@engine_jit()`."""
    return nb.njit(cache=True, _nrt=False, **options)
