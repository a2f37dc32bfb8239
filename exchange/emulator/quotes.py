"""Venue-neutral market figures both route modules format: 24h statistics and a simple order book.

Everything is computed from candles visible at the virtual clock's `now`, so a ticker never shows a
price the candles have not reached yet. The book is synthetic (the emulator has no order flow):
best bid one tick under the last price, best ask one tick over it, levels one tick apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from core.market_rules import floor_to_step
from exchange.emulator.candles import CLOSE, HIGH, LOW, OPEN, TS, VOLUME
from exchange.emulator.state import EmulatorState

DAY_MS = 86_400_000
# Quote value resting at each synthetic book level.
LEVEL_QUOTE = 2_000.0


@dataclass(frozen=True)
class Stats24h:
    symbol_id: str
    open_ms: int
    close_ms: int
    open: float
    high: float
    low: float
    last: float
    volume: float
    quote_volume: float
    bid: float
    ask: float

    @property
    def change(self) -> float:
        return self.last - self.open

    @property
    def change_pct(self) -> float:
        return 100.0 * self.change / self.open if self.open else 0.0

    @property
    def vwap(self) -> float:
        return self.quote_volume / self.volume if self.volume else self.last


def stats_24h(state: EmulatorState, symbol_id: str) -> Stats24h | None:
    """Rolling 24h figures from the finest stored timeframe, or None when nothing is visible."""
    tfs = state.candles.stored_timeframes(symbol_id)
    if not tfs:
        return None
    now = state.now_ms()
    finest = tfs[0]
    rows = state.candles.window(symbol_id, finest, now, start_ms=now - DAY_MS, limit=100_000, newest=True)
    if not len(rows):
        return None
    typical = (rows[:, HIGH] + rows[:, LOW] + rows[:, CLOSE]) / 3.0
    last = float(rows[-1, CLOSE])
    bid, ask = best_bid_ask(state, symbol_id, last)
    return Stats24h(
        symbol_id=symbol_id,
        open_ms=int(rows[0, TS]),
        close_ms=now,
        open=float(rows[0, OPEN]),
        high=float(rows[:, HIGH].max()),
        low=float(rows[:, LOW].min()),
        last=last,
        volume=float(rows[:, VOLUME].sum()),
        quote_volume=float((rows[:, VOLUME] * typical).sum()),
        bid=bid,
        ask=ask,
    )


def best_bid_ask(state: EmulatorState, symbol_id: str, last: float) -> tuple[float, float]:
    """The grid prices just under and just over `last` (one tick each side when `last` is on it)."""
    market = state.market(symbol_id)
    tick = market.rules.tick_size if market else 0.01
    lo, hi = math.floor(last / tick + 1e-9), math.ceil(last / tick - 1e-9)
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    return _on_tick(lo * tick, tick), _on_tick(hi * tick, tick)


def book(
    state: EmulatorState, symbol_id: str, depth: int
) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """(bids best first, asks best first), `depth` levels a side, quantities on the lot grid."""
    market = state.market(symbol_id)
    last = state.candles.last_price(symbol_id, state.now_ms())
    if market is None or last is None:
        return [], []
    tick, lot = market.rules.tick_size, market.rules.lot_size
    bid, ask = best_bid_ask(state, symbol_id, last)
    qty = max(market.rules.min_qty, floor_to_step(LEVEL_QUOTE / last, lot))
    qty = _on_tick(qty, lot)
    bids = [(_on_tick(bid - i * tick, tick), qty) for i in range(depth) if bid - i * tick > 0]
    asks = [(_on_tick(ask + i * tick, tick), qty) for i in range(depth)]
    return bids, asks


def _on_tick(x: float, step: float) -> float:
    """Snap to the grid and drop float noise, so 5521709 * 0.01 prints as 55217.09."""
    return round(round(x / step) * step, max(0, -math.floor(math.log10(step))) + 1)
