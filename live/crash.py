"""Named crash points for the crash-safety tests: `AIOTRADE_CRASH_AT=<stage>[:<n>]` SIGKILLs the runner.

The runner calls `crash_point(stage)` at each step of an order cycle. With the variable unset (always,
outside tests) it costs one dict lookup. With `AIOTRADE_CRASH_AT=after_intent:3` the process kills
itself with SIGKILL (no cleanup, no flush: the harshest crash there is) the third time it reaches
`after_intent`. The stage "in flight" (request sent, answer not yet read) cannot be reached from this
side of the socket; the tests produce it with an emulator middleware that kills the runner after the
order was created and before the answer is written.
"""

from __future__ import annotations

import os
import signal

ENV = "AIOTRADE_CRASH_AT"
# The stages, in the order a cycle passes them.
STAGES = (
    "after_intent",  # the intent is committed, nothing sent yet
    "after_answer",  # the venue answered the create, the answer is not recorded yet
    "after_cancel",  # the venue cancelled an order, not recorded yet
    "after_fills",  # fills recorded, engine state not saved yet
    "after_cycle",  # the bar's cycle fully committed
)

_hits: dict[str, int] = {}


def crash_point(stage: str) -> None:
    spec = os.environ.get(ENV)
    if not spec:
        return
    name, _, nth = spec.partition(":")
    if name != stage:
        return
    _hits[stage] = _hits.get(stage, 0) + 1
    if _hits[stage] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
