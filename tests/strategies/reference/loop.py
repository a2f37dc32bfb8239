"""`Reference`: the run loop. Each bar goes through the fill model, then the close: true range,
risk flags, hysteresis, a switch if due, and a fresh decision of the whole order set.

The concerns live in the mixins (fills.py, grid.py, dca.py, regime_risk.py); this file only holds
the run's state and the order of the steps, which is what the engine's fill-for-fill agreement
depends on most.
"""

from __future__ import annotations

from core.market_rules import MarketRules
from strategies.policy import Policy
from strategies.risk import RunSettings
from tests.strategies.reference.dca import DcaMixin
from tests.strategies.reference.fills import FillsMixin
from tests.strategies.reference.grid import GridMixin
from tests.strategies.reference.regime_risk import RegimeRiskMixin
from tests.strategies.reference.state import Dca, Fill, Grid, Legacy, Order


class Reference(FillsMixin, GridMixin, DcaMixin, RegimeRiskMixin):
    def __init__(self, policy: Policy, rules: MarketRules, settings: RunSettings) -> None:
        self.policy, self.r, self.s = policy, rules, policy.settings_for(settings)
        self.cash, self.inv, self.dust = settings.capital_quote, 0.0, 0.0
        self.peak = self.last_eq = self.day_start = settings.capital_quote
        self.day_end, self.killed, self.day_paused = -(1 << 62), False, False
        self.active, self.cand, self.cand_n = -1, -1, 0
        self.engine: Grid | Dca | None = None
        self.legacy: list[Legacy] = []
        self.orders: list[Order] = []
        self.fills: list[Fill] = []
        self.bar = -1
        self.cycles = self.wins = 0
        self.true_ranges: list[float] = []  # one per closed bar, for an ATR-sized grid range
        self.prev_close: float | None = None

    def close_bar(self, ts: int, close: float, raw: int, prob: float, high: float, low: float) -> None:
        tr = high - low
        if self.prev_close is not None:
            tr = max(tr, abs(high - self.prev_close), abs(low - self.prev_close))
        self.true_ranges.append(tr)
        self.prev_close = close
        self.bar += 1
        self.risk_flags(ts, self.cash + self.inv * close)
        new = self.hysteresis(raw, prob)
        if new != self.active:
            self.switch(new, close)
        self.orders = self.decide(close)

    def decide(self, close: float) -> list[Order]:
        if self.killed and self.s.sell_inventory_on_kill:
            amount = self.lots(self.inv)
            return [Order("sell", close, amount, "kill_sell", 0, True)] if amount > 0 and self.ok(close, amount) else []
        out = []
        for j, x in enumerate(self.legacy):  # legacy exits first: ties in a bar keep this order
            if x.qty <= 0:
                continue
            amount = self.lots(x.qty)
            market = x.stop > 0 and close <= x.stop
            price = close if market else x.price
            if not self.ok(price, amount):
                self.dust += x.qty
                self.legacy[j] = Legacy()
                continue
            out.append(Order("sell", price, amount, "legacy_exit" if market else "legacy_sell", j, market))
        entries = not self.killed and not self.day_paused and self.active >= 0
        if isinstance(self.engine, Grid):
            out += self.decide_grid(self.engine, close, entries, self.budget())
        elif isinstance(self.engine, Dca):
            out += self.decide_dca(self.engine, close, entries, self.budget())
        return out

    def run(self, ts, o, h, l, c, regimes=None, probs=None) -> list[float]:  # noqa: E741
        """Every bar in order; returns the equity at each close (cash + inventory x close)."""
        equity = []
        for i in range(len(ts)):
            self.fill_bar(o[i], h[i], l[i], c[i])
            raw = 0 if regimes is None else int(regimes[i])
            prob = 1.0 if probs is None else float(probs[i])
            self.close_bar(int(ts[i]), float(c[i]), raw, prob, float(h[i]), float(l[i]))
            equity.append(self.cash + self.inv * c[i])
        return equity
