"""The per-bar engine API for Python callers (the live runner, paper trading, tests).

    eng = Engine(policy, rules, settings)            # or Engine(..., state=EngineState.restore(saved))
    for each closed candle:
        for fill in fills the exchange reported since the last close:
            eng.apply_fill(order, price, qty, is_taker)   # order: an EngineOrder from desired_orders()
        changed = eng.on_close(ts_ms, close, regime, prob)
        if changed: reconcile eng.desired_orders() with the venue's open orders
    eng.state.snapshot()                              # plain arrays to persist

The same numba functions run inside the simulator's loop (`strategies.simulator`), so a live runner
that books the same fills and closes the same bars holds exactly the state the backtest held.
`step()` runs one bar through the fill model and the decision (the simulator's step, for paper/tests).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.market_rules import MarketRules
from strategies.dca import average_entry
from strategies.decide import on_close as _on_close
from strategies.fills import FILLED
from strategies.fills import apply_fill as _apply_fill
from strategies.fills import fill_bar as _fill_bar
from strategies.layout import (
    ENTRY_KINDS,
    F_CASH,
    F_DUST,
    F_INV,
    F_INV_COST,
    I_ACTIVE,
    I_BAR,
    I_EPOCH,
    I_N_ORDERS,
    KIND_NAMES,
    L_KIND,
    L_PRICE,
    L_QTY,
    L_REF,
    L_SIDE,
    L_T,
    L_TAKER,
    N_LC,
    O_AMOUNT,
    O_AUX,
    O_EPOCH,
    O_KIND,
    O_MARKET,
    O_PRICE,
    O_REF,
    O_SIDE,
    O_T,
)
from strategies.policy import Policy, param_table
from strategies.risk import RunSettings
from strategies.state import EngineState

_NO_LOG = np.empty((0, N_LC), dtype=np.float64)


@dataclass(frozen=True)
class EngineOrder:
    """One desired order. Limits rest; market orders are sent at once and fill at the next open.
    `slot` is stable per (kind, ref) for reconciliation; `role` is entry (buys) or exit (sells)."""

    side: str
    price: float  # limit price; for market orders the close it was decided at
    amount: float
    kind: str
    kind_id: int
    ref: int
    market: bool
    epoch: int
    aux: float

    @property
    def slot(self) -> int:
        return self.kind_id * 100_000 + self.ref

    @property
    def role(self) -> str:
        return "entry" if self.kind_id in ENTRY_KINDS else "exit"


@dataclass(frozen=True)
class EngineFill:
    side: str
    kind: str
    ref: int
    price: float
    qty: float
    t: float
    taker: bool


class Engine:
    def __init__(self, policy: Policy | np.ndarray, rules: MarketRules, settings: RunSettings,
                 state: EngineState | None = None) -> None:
        if isinstance(policy, Policy):
            settings = policy.settings_for(settings)
            policy = policy.table()
        self.params = param_table(policy)
        self.rules = rules
        self.rules_arr = rules.as_array()
        self.settings = settings
        self.settings_arr = settings.as_array()
        self.state = state if state is not None else EngineState.new(settings.capital_quote)

    # ---- the two calls the live runner makes -------------------------------------------------
    def apply_fill(self, order: EngineOrder, price: float, qty: float, is_taker: bool | None = None) -> None:
        s = self.state
        taker = order.market if is_taker is None else is_taker
        _apply_fill(s.sf, s.si, s.grid, s.legacy, self.params, self.rules_arr, order.kind_id, order.ref,
                    order.epoch, order.aux, float(price), float(qty), bool(taker), 0.0, _NO_LOG, 0)

    def on_close(self, ts_ms: int, close: float, regime: int = 0, prob: float = 1.0,
                 high: float | None = None, low: float | None = None) -> bool:
        """Decide at a closed bar. `high`/`low` (default: the close) feed the ATR of an ATR-sized grid
        range; pass the bar's own to match the backtest."""
        s = self.state
        c = float(close)
        h = c if high is None else float(high)
        lo = c if low is None else float(low)
        return bool(_on_close(s.sf, s.si, s.grid, s.legacy, s.orders, self.params, self.rules_arr,
                              self.settings_arr, int(ts_ms), c, int(regime), float(prob), h, lo))

    def desired_orders(self) -> list[EngineOrder]:
        o = self.state.orders
        return [
            EngineOrder(
                side="buy" if o[i, O_SIDE] > 0 else "sell", price=float(o[i, O_PRICE]),
                amount=float(o[i, O_AMOUNT]), kind=KIND_NAMES[int(o[i, O_KIND])], kind_id=int(o[i, O_KIND]),
                ref=int(o[i, O_REF]), market=bool(o[i, O_MARKET] > 0.5), epoch=int(o[i, O_EPOCH]),
                aux=float(o[i, O_AUX]),
            )
            for i in range(int(self.state.si[I_N_ORDERS]))
            if o[i, O_T] != FILLED  # filled in this bar; the next close re-decides the set
        ]

    # ---- one simulated bar (the simulator's step) ---------------------------------------------
    def fill_bar(self, o: float, h: float, l: float, c: float) -> list[EngineFill]:  # noqa: E741
        s = self.state
        log = np.zeros((int(s.si[I_N_ORDERS]) + 1, N_LC))
        n = _fill_bar(s.sf, s.si, s.grid, s.legacy, s.orders, self.params, self.rules_arr, self.settings_arr,
                      float(o), float(h), float(l), float(c), log, 0)
        return [
            EngineFill("buy" if r[L_SIDE] > 0 else "sell", KIND_NAMES[int(r[L_KIND])], int(r[L_REF]),
                       float(r[L_PRICE]), float(r[L_QTY]), float(r[L_T]), bool(r[L_TAKER] > 0.5))
            for r in log[:n]
        ]

    def step(self, ts_ms: int, o: float, h: float, l: float, c: float, regime: int = 0,  # noqa: E741
             prob: float = 1.0) -> tuple[list[EngineFill], bool]:
        fills = self.fill_bar(o, h, l, c)
        return fills, self.on_close(ts_ms, c, regime, prob, h, l)

    # ---- read-outs ----------------------------------------------------------------------------
    def equity(self, close: float) -> float:
        return float(self.state.sf[F_CASH] + self.state.sf[F_INV] * close)

    @property
    def cash(self) -> float:
        return float(self.state.sf[F_CASH])

    @property
    def inventory(self) -> float:
        return float(self.state.sf[F_INV])

    @property
    def dust(self) -> float:
        return float(self.state.sf[F_DUST])

    @property
    def inventory_cost(self) -> float:
        return float(self.state.sf[F_INV_COST])

    @property
    def active_regime(self) -> int:
        return int(self.state.si[I_ACTIVE])

    @property
    def epoch(self) -> int:
        return int(self.state.si[I_EPOCH])

    @property
    def bar(self) -> int:
        return int(self.state.si[I_BAR])

    def dca_average_entry(self) -> float:
        return float(average_entry(self.state.sf))

