"""The reference grid: arming (dynamic, fixed, ATR-sized range) and what a grid wants at a close.

A mixin of `Reference`. Written from strategies/README.md's "Grid" section; it re-decides every
order at every close on purpose (the engine's quiet band skips that, and agreeing with this proves
the skip exact).
"""

from __future__ import annotations

from strategies.policy import RegimeParams
from tests.strategies.reference.state import Grid, Holding, Order


class GridMixin:
    def arm_grid(self, p: RegimeParams, close: float) -> Grid:
        g, n = p.grid, p.grid.levels
        geometric = g.spacing == "geometric"
        if g.range_mode == "dynamic" and g.range_atr_mult > 0:
            if len(self.true_ranges) < g.atr_bars:
                return Grid(p, 0.0, 0.0, 0, [], waiting=True)  # armed once atr_bars bars have closed
            last = self.true_ranges[-g.atr_bars:]
            atr = sum(last) / len(last)
            # half-width clamped to [2 x (levels - 1) ticks, half the close] (strategies/README.md)
            half = min(max(g.range_atr_mult * atr, 2.0 * self.r.tick_size * (n - 1)), 0.5 * close)
            lo, hi = close - half, close + half
            step = (hi / lo) ** (1.0 / (n - 1)) if geometric else (hi - lo) / (n - 1)
        elif g.range_mode == "fixed":
            lo = g.lower_price
            step = (g.upper_price / lo) ** (1.0 / (n - 1)) if geometric else (g.upper_price - lo) / (n - 1)
        elif geometric:
            step = 1.0 + g.grid_step_pct / 100.0
            lo = close / step ** ((n - 1) / 2.0)
        else:
            step = close * (g.grid_step_pct / 100.0)
            lo = close - step * (n - 1) / 2.0
        return Grid(p, lo, step, n - 1, [Holding() for _ in range(n)])

    def buy_px(self, g: Grid, k: int) -> float:
        return self.r.round_price(g.raw(k), True)

    def sell_px(self, g: Grid, k: int) -> float:
        return self.r.round_price(g.raw(k), False)

    def decide_grid(self, g: Grid, close: float, entries: bool, budget: float) -> list[Order]:
        if g.waiting:
            g = self.engine = self.arm_grid(g.p, close)
            if g.waiting:
                return []
        sl, tp = g.p.grid.stop_loss_price, g.p.grid.take_profit_price
        if g.halted or (sl and close <= sl) or (tp and close >= tp):
            # a stop or take-profit sells every cell at market and halts until a switch re-arms
            g.halted = True
            held = sum(h.qty for h in g.cell[: g.cells])
            amount = self.lots(held)
            if held > 0 and amount > 0 and self.ok(close, amount):
                return [Order("sell", close, amount, "grid_stop", 0, True)]
            for h in g.cell[: g.cells]:
                self.dust += h.qty
                h.qty = h.cost = h.pnl = 0.0
            return []
        if g.p.grid.trailing_up:
            while g.cell[0].qty <= 0 and close >= g.raw(g.cells + 1):
                g.lo = g.raw(1)
                g.cell = g.cell[1: g.cells] + [Holding(), Holding()]
        out = []
        for k in range(g.cells):
            h = g.cell[k]
            if h.qty > 0:
                amount, price = self.lots(h.qty), self.sell_px(g, k + 1)
                if self.ok(price, amount):
                    out.append(Order("sell", price, amount, "grid_sell", k))
                else:
                    self.dust += h.qty
                    h.qty = h.cost = h.pnl = 0.0
        if not entries:
            return out
        # buys nearest the price first, while the budget lasts; a level taken by the sell of the
        # cell below gets no buy (spot: a cell never sells what it did not buy)
        for k in range(g.cells - 1, -1, -1):
            price = self.buy_px(g, k)
            if price >= close or g.cell[k].qty > 0 or (k > 0 and g.cell[k - 1].qty > 0):
                continue
            amount = self.lots(g.p.grid.order_size_quote / price)
            if not self.ok(price, amount) or price * amount > budget:
                continue
            budget -= price * amount
            out.append(Order("buy", price, amount, "grid_buy", k))
        return out
