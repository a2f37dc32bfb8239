"""The reference's fill model and booking: which resting orders a bar fills, and whose bucket each
fill lands in (grid cell, DCA position, legacy slot), with fees, lots and dust as the README says.

A mixin of `Reference` (it reads and writes the run's cash, inventory, dust, engine and legacy
slots); kept apart from the decisions so each file can be checked against one README section.
"""

from __future__ import annotations

from core.market_rules import OK
from strategies.fill_model import fill_time as _fill_time_nb
from tests.strategies.reference.state import Dca, Fill, Grid, Holding, Order

# The fill model's pure-Python body: the one piece of engine code the reference shares, because it
# is also the emulator's and the paper venue's (a second copy would test nothing but itself).
fill_time = _fill_time_nb.py_func


class FillsMixin:
    # ---- rules helpers --------------------------------------------------------------------
    def ok(self, price: float, amount: float) -> bool:
        return self.r.check(price, amount) == OK

    def lots(self, qty: float) -> float:
        return self.r.round_amount(qty)

    # ---- fills ------------------------------------------------------------------------------
    def fill_bar(self, o: float, h: float, l: float, c: float) -> None:  # noqa: E741
        hits = []
        for i, order in enumerate(self.orders):
            t = 0.0 if order.market else fill_time(order.side == "buy", order.price, o, h, l, c, self.s.touch_fills)
            if t >= 0.0:
                hits.append((t, i, order))
        hits.sort(key=lambda x: (x[0], x[1]))  # path order; ties keep the table order
        for _, _, order in hits:
            if order.market:
                # the venue checks a market order again at the open it fills at; a buy needs the cash
                if not self.ok(o, order.amount) or (order.side == "buy" and order.amount * o > self.cash):
                    continue
                self.book(order, o, order.amount, taker=True)
            else:
                self.book(order, order.price, order.amount, taker=False)
        if hits:
            filled = {id(x[2]) for x in hits}
            self.orders = [x for x in self.orders if id(x) not in filled]

    def book(self, order: Order, price: float, qty: float, taker: bool) -> None:
        fee = self.r.taker_fee if taker else self.r.maker_fee
        self.fills.append(Fill(self.bar + 1, order.side, order.kind, order.ref, price, qty, taker))
        if order.side == "buy":
            # a buy's fee is taken in base; the fraction of a lot left over is dust for the next buy
            self.cash -= qty * price
            received = qty * (1 - fee)
            self.inv += received
            total = received + self.dust
            add = self.lots(total)
            self.dust = total - add
            self.add_to_bucket(order, add, qty * price, price, qty)
        else:
            value = qty * price  # a sell's fee is taken in quote
            self.cash += value * (1 - fee)
            self.inv -= qty
            self.sell_from_buckets(order, qty, value * (1 - fee))

    def add_to_bucket(self, order: Order, add: float, cost: float, price: float, qty: float) -> None:
        if order.kind == "grid_buy":
            cell = self.engine.cell[order.ref]
            cell.qty += add
            cell.cost += cost
            return
        d = self.engine
        if not d.in_cycle:
            d.in_cycle, d.entry, d.nso, d.trailing, d.peak = True, price, 0, False, 0.0
            d.pos, d.vwap_num, d.vwap_den = Holding(), 0.0, 0.0
        if order.kind == "dca_safety":
            d.nso = max(d.nso, order.ref)
        d.pos.qty += add
        d.pos.cost += cost
        d.vwap_num += cost
        d.vwap_den += qty

    def take(self, h: Holding, qty: float, proceeds: float) -> bool:
        """Sell qty out of a holding; True when it is now empty (a finished cycle)."""
        frac = min(1.0, qty / h.qty)
        left = h.qty - qty
        cost_sold = h.cost if left <= self.r.lot_size * 1e-6 else h.cost * frac
        h.pnl += proceeds - cost_sold
        if left <= self.r.lot_size * 1e-6:
            h.qty, h.cost = 0.0, 0.0
            self.cycles += 1
            self.wins += h.pnl > 0
            h.pnl = 0.0
            return True
        h.qty, h.cost = left, h.cost - cost_sold
        return False

    def sell_from_buckets(self, order: Order, qty: float, proceeds: float) -> None:
        if order.kind == "grid_sell":
            self.take(self.engine.cell[order.ref], qty, proceeds)
        elif order.kind in ("legacy_sell", "legacy_exit"):
            self.take(self.legacy[order.ref], qty, proceeds)
        elif order.kind in ("dca_take_profit", "dca_exit"):
            self.sell_dca(qty, proceeds)
        else:  # grid_stop: every cell; kill_sell: legacy, grid, dca, dust
            unit, left = proceeds / qty, qty
            groups = [self.engine.cell[: self.engine.cells]] if order.kind == "grid_stop" else [
                self.legacy, self.engine.cell[: self.engine.cells] if isinstance(self.engine, Grid) else []]
            for group in groups:
                for h in group:
                    part = min(left, h.qty)
                    if part > 0:
                        self.take(h, part, part * unit)
                        left -= part
            if order.kind == "kill_sell" and isinstance(self.engine, Dca) and self.engine.pos.qty > 0:
                part = min(left, self.engine.pos.qty)
                self.sell_dca(part, part * unit)
                left -= part
            if left > 0:
                self.dust -= left

    def sell_dca(self, qty: float, proceeds: float) -> None:
        d = self.engine
        if self.take(d.pos, qty, proceeds):
            d.in_cycle, d.nso, d.trailing, d.peak = False, 0, False, 0.0
            d.vwap_num = d.vwap_den = d.entry = 0.0
            d.cooldown_until = self.bar + 1 + d.p.dca.cooldown_bars
