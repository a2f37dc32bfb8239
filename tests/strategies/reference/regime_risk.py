"""The reference's gates at a close: the risk flags (drawdown kill switch, daily loss limit), the
exposure budget, regime hysteresis, and the hand-over at a regime switch (held inventory becomes
legacy exits, the new engine arms).

A mixin of `Reference`; strategies/README.md's "Regime policy and switches" and "Risk" sections.
"""

from __future__ import annotations

from tests.strategies.reference.state import Dca, Grid, Legacy

DAY_MS = 86_400_000


class RegimeRiskMixin:
    def risk_flags(self, ts: int, eq: float) -> None:
        """Update the day, the peak and the two flags that stop new entries, from this close's equity."""
        if ts >= self.day_end:
            self.day_end = (ts // DAY_MS + 1) * DAY_MS
            self.day_start, self.day_paused = self.last_eq, False  # the previous UTC day's last equity
        self.peak = max(self.peak, eq)
        if self.s.max_drawdown_pct > 0 and not self.killed and eq <= self.peak * (1 - self.s.max_drawdown_pct / 100):
            self.killed = True
        if (self.s.daily_loss_limit_pct > 0 and not self.day_paused
                and eq <= self.day_start * (1 - self.s.daily_loss_limit_pct / 100)):
            self.day_paused = True
        self.last_eq = eq

    def budget(self) -> float:
        """Cash, capped by the exposure room: capital share minus the cost of everything held
        (summed in one fixed order: DCA position, grid cells, then the legacy slots' own sum)."""
        e = self.engine
        cost = e.pos.cost if isinstance(e, Dca) else 0.0
        for h in e.cell[: e.cells] if isinstance(e, Grid) else []:
            cost += h.cost
        legacy = 0.0
        for h in self.legacy:
            legacy += h.cost
        cost += legacy
        return min(self.cash, self.s.max_exposure_pct / 100 * self.s.capital_quote - cost)

    def hysteresis(self, raw: int, prob: float) -> int:
        if raw < 0 or raw == self.active or prob < self.s.min_regime_probability:
            self.cand, self.cand_n = -1, 0
            return self.active
        if self.active < 0:  # the first counting prediction arms at once
            self.cand, self.cand_n = -1, 0
            return raw
        if raw == self.cand:
            self.cand_n += 1
        else:
            self.cand, self.cand_n = raw, 1
        if self.cand_n >= max(1, self.s.min_dwell_bars):
            self.cand, self.cand_n = -1, 0
            return raw
        return self.active

    def switch(self, new: int, close: float) -> None:
        e = self.engine
        if isinstance(e, Grid):
            for k in range(e.cells):
                if e.cell[k].qty > 0:
                    self.keep(Legacy(e.cell[k].qty, e.cell[k].cost, e.cell[k].pnl, self.sell_px(e, k + 1), 0.0))
        elif isinstance(e, Dca) and e.in_cycle and e.pos.qty > 0:
            # a trailing take-profit falls back to the plain take-profit limit; the stop is kept
            tp = self.r.round_price(e.avg() * (1 + e.p.dca.take_profit_pct / 100), False)
            sl = e.p.dca.stop_loss_pct
            stop = e.avg() * (1 - sl / 100) if sl else 0.0
            self.keep(Legacy(e.pos.qty, e.pos.cost, e.pos.pnl, tp, stop))
        self.active = new
        p = self.policy.regimes[new]
        self.engine = self.arm_grid(p, close) if p.engine == "grid" else Dca(p) if p.engine == "dca" else None

    def keep(self, x: Legacy) -> None:
        """Put a legacy exit in the first free slot (the engine reuses slots the same way)."""
        for j, slot in enumerate(self.legacy):
            if slot.qty <= 0:
                self.legacy[j] = x
                return
        self.legacy.append(x)
