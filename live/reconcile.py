"""The pure diff between the orders the engine wants and the orders that rest on the venue.

`diff_orders` changes only what differs: an open order that matches a desired one (same slot and side,
price within `price_tol_pct`, remaining amount within `amount_tol_pct`) is kept; every other open order
is cancelled and every unmatched desired order is created. No I/O, no clock: the runner feeds it the
engine's output and the state DB's view of the venue (which restart recovery has made true first, see
`live.recovery`).

Cancels come before creates in the plan: on spot, a replaced order's locked balance must be freed
before its successor can be placed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class DesiredOrder:
    """One order the engine wants after this bar. `slot` is the engine's order slot; `engine` is the
    engine order's identity (`live.state.EngineRef`), carried into the intent. A market order is sent
    once and never matched with a resting one."""

    pair: str
    side: str  # "buy" | "sell"
    price: float  # limit price; for a market order the close it was decided at
    amount: float
    slot: int
    role: str = "entry"  # "entry" opens/increases inventory, "exit" sells it (kept during kill/pauses)
    market: bool = False
    engine: Any = None

    @property
    def is_buy(self) -> bool:
        return self.side == "buy"


@dataclass(frozen=True)
class RestingOrder:
    """What we believe rests on the venue (from the state DB after syncing)."""

    client_id: str
    pair: str
    side: str
    price: float
    remaining: float
    slot: int
    role: str = "entry"


@dataclass
class Plan:
    keep: list[tuple[RestingOrder, DesiredOrder]] = field(default_factory=list)
    cancel: list[RestingOrder] = field(default_factory=list)
    create: list[DesiredOrder] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.cancel and not self.create


def within(a: float, b: float, tol_pct: float) -> bool:
    """|a - b| <= tol_pct % of b (b is the desired value). tol 0 means exactly equal."""
    return abs(a - b) <= abs(b) * tol_pct / 100.0 + 1e-12 * max(abs(a), abs(b), 1.0)


def diff_orders(
    desired: Sequence[DesiredOrder],
    resting: Iterable[RestingOrder],
    price_tol_pct: float,
    amount_tol_pct: float,
) -> Plan:
    """Match by (slot, side) first, then any leftover with the same side and a close price.

    The second pass lets an order survive when the engine renumbered its slots (e.g. a grid
    shifted by trailing-up) but still wants an order at that very price and size.
    """
    plan = Plan()
    pending = list(desired)
    leftovers: list[RestingOrder] = []
    by_slot: dict[tuple[int, str], int] = {}
    # Market orders never rest: they are always sent (once: their intent id is deterministic).
    taken: set[int] = {i for i, d in enumerate(pending) if d.market}
    for i, d in enumerate(pending):
        if i not in taken:
            by_slot.setdefault((d.slot, d.side), i)
    for r in sorted(resting, key=lambda o: (o.slot, o.side, o.client_id)):
        i = by_slot.get((r.slot, r.side))
        if i is not None and i not in taken and _matches(r, pending[i], price_tol_pct, amount_tol_pct):
            taken.add(i)
            plan.keep.append((r, pending[i]))
        else:
            leftovers.append(r)
    for r in leftovers:
        i = _close_match(r, pending, taken, price_tol_pct, amount_tol_pct)
        if i is None:
            plan.cancel.append(r)
        else:
            taken.add(i)
            plan.keep.append((r, pending[i]))
    plan.create = [d for i, d in enumerate(pending) if i not in taken or d.market]
    return plan


def _matches(r: RestingOrder, d: DesiredOrder, price_tol_pct: float, amount_tol_pct: float) -> bool:
    return (
        r.pair == d.pair
        and r.side == d.side
        and within(r.price, d.price, price_tol_pct)
        and within(r.remaining, d.amount, amount_tol_pct)
    )


def _close_match(
    r: RestingOrder, pending: list[DesiredOrder], taken: set[int], price_tol_pct: float, amount_tol_pct: float
) -> int | None:
    best, best_gap = None, float("inf")
    for i, d in enumerate(pending):
        if i in taken or not _matches(r, d, price_tol_pct, amount_tol_pct):
            continue
        gap = abs(r.price - d.price)
        if gap < best_gap:
            best, best_gap = i, gap
    return best
