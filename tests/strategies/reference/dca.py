"""The reference averaging (DCA) engine: base order, safety ladder, take-profit (plain or
trailing), stop-loss and cooldown, as strategies/README.md's "Averaging (DCA)" section says.

A mixin of `Reference`; it re-decides the whole ladder at every close.
"""

from __future__ import annotations

from tests.strategies.reference.state import Dca, Holding, Order


class DcaMixin:
    def decide_dca(self, d: Dca, close: float, entries: bool, budget: float) -> list[Order]:
        p = d.p.dca
        if not d.in_cycle:
            if not entries or self.bar < d.cooldown_until:
                return []
            amount = self.lots(p.base_order_quote / close)
            # a market buy fills at the next open: keep a buffer so the cash check there passes
            if not self.ok(close, amount) or p.base_order_quote * (1 + self.s.market_buffer_pct / 100) > budget:
                return []
            return [Order("buy", close, amount, "dca_base", 0, True)]
        avg = d.avg()
        if p.stop_loss_pct and close <= avg * (1 - p.stop_loss_pct / 100):
            return self.dca_exit(d, close)
        tp_raw = avg * (1 + p.take_profit_pct / 100)
        tp = self.r.round_price(tp_raw, False)
        out = []
        if p.trailing_take_profit_pct:
            if not d.trailing and close >= tp_raw:
                d.trailing, d.peak = True, close
            if d.trailing:
                d.peak = max(d.peak, close)
                if close <= d.peak * (1 - p.trailing_take_profit_pct / 100):
                    return self.dca_exit(d, close)
        else:
            amount = self.lots(d.pos.qty)
            if self.ok(tp, amount):
                out.append(Order("sell", tp, amount, "dca_take_profit", 0))
        if entries:
            dev, cum, size = p.price_deviation_pct, 0.0, p.safety_order_quote
            for m in range(1, p.max_safety_orders + 1):
                cum += dev
                if m > d.nso:
                    price = self.r.round_price(d.entry * (1 - cum / 100), True)
                    amount = self.lots(size / price)
                    if self.ok(price, amount):
                        if price * amount > budget:
                            break  # the ladder is placed nearest first and stops at the first that does not fit
                        budget -= price * amount
                        out.append(Order("buy", price, amount, "dca_safety", m))
                dev *= p.step_scale
                size *= p.volume_scale
        return out

    def dca_exit(self, d: Dca, close: float) -> list[Order]:
        amount = self.lots(d.pos.qty)
        if self.ok(close, amount):
            return [Order("sell", close, amount, "dca_exit", 0, True)]
        # too small to sell: it becomes dust and the cycle ends
        self.dust += d.pos.qty
        d.pos, d.in_cycle, d.nso, d.trailing, d.peak = Holding(), False, 0, False, 0.0
        d.vwap_num = d.vwap_den = d.entry = 0.0
        return []
