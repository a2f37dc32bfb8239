"""The reference's plain objects: orders, fills, holdings, and the two engines' state.

Deliberately dataclasses and lists, not the engine's packed arrays: the reference must be readable
against strategies/README.md, so that a disagreement points at the engine, not at the oracle.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from strategies.policy import RegimeParams


@dataclass
class Order:
    side: str
    price: float
    amount: float
    kind: str
    ref: int = 0
    market: bool = False


@dataclass
class Fill:
    bar: int
    side: str
    kind: str
    ref: int
    price: float
    qty: float
    taker: bool


@dataclass
class Holding:
    qty: float = 0.0
    cost: float = 0.0
    pnl: float = 0.0


@dataclass
class Legacy(Holding):
    """A holding left by an earlier regime: it keeps its exit price (and a DCA position its stop)."""

    price: float = 0.0
    stop: float = 0.0


@dataclass
class Grid:
    p: RegimeParams
    lo: float
    step: float
    cells: int
    cell: list[Holding]
    halted: bool = False
    waiting: bool = False  # an ATR-sized range before atr_bars bars have closed: no levels yet

    def raw(self, k: int) -> float:
        """Level k before tick rounding (buys round it down, sells up)."""
        if self.p.grid.spacing == "geometric":
            return self.lo * self.step ** float(k)
        return self.lo + self.step * k


@dataclass
class Dca:
    p: RegimeParams
    in_cycle: bool = False
    pos: Holding = field(default_factory=Holding)
    vwap_num: float = 0.0
    vwap_den: float = 0.0
    entry: float = 0.0
    nso: int = 0
    trailing: bool = False
    peak: float = 0.0
    cooldown_until: int = 0

    def avg(self) -> float:
        """The cycle's volume-weighted entry over its buy fills (before fees, as the README defines it)."""
        return self.vwap_num / self.vwap_den
