"""A slow, obvious pure-Python backtester with the engine's documented semantics (strategies/README.md).

Written from the rules, not from the numba code: plain objects and lists, and it re-decides the
whole order set at every close (the engine re-decides only when its quiet band says the result
could change; agreeing fill for fill with this oracle is what proves that shortcut exact). It shares
only the exchange-rules module (the one place rounding lives) and the fill model's pure-Python body.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from core.market_rules import OK, MarketRules
from strategies.fill_model import fill_time as _fill_time_nb
from strategies.policy import Policy, RegimeParams
from strategies.risk import RunSettings

fill_time = _fill_time_nb.py_func
DAY_MS = 86_400_000


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
        return self.vwap_num / self.vwap_den


class Reference:
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
        hits.sort(key=lambda x: (x[0], x[1]))
        for _, _, order in hits:
            if order.market:
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
            self.cash -= qty * price
            received = qty * (1 - fee)
            self.inv += received
            total = received + self.dust
            add = self.lots(total)
            self.dust = total - add
            self.add_to_bucket(order, add, qty * price, price, qty)
        else:
            value = qty * price
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

    # ---- the close --------------------------------------------------------------------------
    def close_bar(self, ts: int, close: float, raw: int, prob: float, high: float, low: float) -> None:
        tr = high - low
        if self.prev_close is not None:
            tr = max(tr, abs(high - self.prev_close), abs(low - self.prev_close))
        self.true_ranges.append(tr)
        self.prev_close = close
        self.bar += 1
        eq = self.cash + self.inv * close
        if ts >= self.day_end:
            self.day_end = (ts // DAY_MS + 1) * DAY_MS
            self.day_start, self.day_paused = self.last_eq, False
        self.peak = max(self.peak, eq)
        if self.s.max_drawdown_pct > 0 and not self.killed and eq <= self.peak * (1 - self.s.max_drawdown_pct / 100):
            self.killed = True
        if (self.s.daily_loss_limit_pct > 0 and not self.day_paused
                and eq <= self.day_start * (1 - self.s.daily_loss_limit_pct / 100)):
            self.day_paused = True
        self.last_eq = eq
        new = self.hysteresis(raw, prob)
        if new != self.active:
            self.switch(new, close)
        self.orders = self.decide(close)

    def hysteresis(self, raw: int, prob: float) -> int:
        if raw < 0 or raw == self.active or prob < self.s.min_regime_probability:
            self.cand, self.cand_n = -1, 0
            return self.active
        if self.active < 0:
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
            tp = self.r.round_price(e.avg() * (1 + e.p.dca.take_profit_pct / 100), False)
            sl = e.p.dca.stop_loss_pct
            stop = e.avg() * (1 - sl / 100) if sl else 0.0
            self.keep(Legacy(e.pos.qty, e.pos.cost, e.pos.pnl, tp, stop))
        self.active = new
        p = self.policy.regimes[new]
        self.engine = self.arm_grid(p, close) if p.engine == "grid" else Dca(p) if p.engine == "dca" else None

    def keep(self, x: Legacy) -> None:
        for j, slot in enumerate(self.legacy):
            if slot.qty <= 0:
                self.legacy[j] = x
                return
        self.legacy.append(x)

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

    def decide(self, close: float) -> list[Order]:
        if self.killed and self.s.sell_inventory_on_kill:
            amount = self.lots(self.inv)
            return [Order("sell", close, amount, "kill_sell", 0, True)] if amount > 0 and self.ok(close, amount) else []
        out = []
        for j, x in enumerate(self.legacy):
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

    def decide_grid(self, g: Grid, close: float, entries: bool, budget: float) -> list[Order]:
        if g.waiting:
            g = self.engine = self.arm_grid(g.p, close)
            if g.waiting:
                return []
        sl, tp = g.p.grid.stop_loss_price, g.p.grid.take_profit_price
        if g.halted or (sl and close <= sl) or (tp and close >= tp):
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

    def decide_dca(self, d: Dca, close: float, entries: bool, budget: float) -> list[Order]:
        p = d.p.dca
        if not d.in_cycle:
            if not entries or self.bar < d.cooldown_until:
                return []
            amount = self.lots(p.base_order_quote / close)
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
                            break
                        budget -= price * amount
                        out.append(Order("buy", price, amount, "dca_safety", m))
                dev *= p.step_scale
                size *= p.volume_scale
        return out

    def dca_exit(self, d: Dca, close: float) -> list[Order]:
        amount = self.lots(d.pos.qty)
        if self.ok(close, amount):
            return [Order("sell", close, amount, "dca_exit", 0, True)]
        self.dust += d.pos.qty
        d.pos, d.in_cycle, d.nso, d.trailing, d.peak = Holding(), False, 0, False, 0.0
        d.vwap_num = d.vwap_den = d.entry = 0.0
        return []

    # ---- the run ------------------------------------------------------------------------------
    def run(self, ts, o, h, l, c, regimes=None, probs=None) -> list[float]:  # noqa: E741
        equity = []
        for i in range(len(ts)):
            self.fill_bar(o[i], h[i], l[i], c[i])
            raw = 0 if regimes is None else int(regimes[i])
            prob = 1.0 if probs is None else float(probs[i])
            self.close_bar(int(ts[i]), float(c[i]), raw, prob, float(h[i]), float(l[i]))
            equity.append(self.cash + self.inv * c[i])
        return equity


def is_finite(x: float) -> bool:
    return not (math.isnan(x) or math.isinf(x))
