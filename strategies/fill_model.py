"""The fill model on OHLC bars: one implementation for the backtester, the emulator and paper trading.

Rules (documented in the README too):
1. Orders decided at a bar's close become live from the next bar; an order never fills on the bar
   whose close decided it, and orders placed inside a bar wait for the next one. This is what the
   live runner does: it acts once per closed candle.
2. The price walks an intrabar path through the four prices: an up bar (close >= open) goes
   open -> low -> high -> close (it must have made its low before closing high), a down bar goes
   open -> high -> low -> close.
3. A resting limit buy at p fills when the bar trades through it (low < p), a sell when high > p.
   With `touch` (touch-fills) low <= p / high >= p is enough. It fills at its limit price p.
4. Fills inside one bar happen in the order the path reaches their prices: `fill_time` returns the
   position along the path (0.0 = open, 3.0 = close), or -1.0 when the order does not fill.
Fees: a resting limit pays the maker fee; the exchange charges a buy's fee in the base asset and a
sell's in the quote asset (Binance and Bitget spot without a fee token).
"""

from __future__ import annotations

import numba as nb


@nb.njit(cache=True)
def intrabar_path(o: float, h: float, l: float, c: float) -> tuple[float, float, float, float]:  # noqa: E741
    if c >= o:
        return o, l, h, c
    return o, h, l, c


@nb.njit(cache=True)
def fill_time(is_buy: bool, price: float, o: float, h: float, l: float, c: float, touch: bool) -> float:  # noqa: E741
    """Where along the bar's path a resting limit order at `price` fills; -1.0 if it does not."""
    if is_buy:
        if not (l < price or (touch and l <= price)):
            return -1.0
    else:
        if not (h > price or (touch and h >= price)):
            return -1.0
    p0, p1, p2, p3 = intrabar_path(o, h, l, c)
    pts = (p0, p1, p2, p3)
    for k in range(3):
        a = pts[k]
        b = pts[k + 1]
        if is_buy:
            if a <= price:  # already at or below the limit at the segment start: marketable
                return float(k)
            if b <= price:
                return k + (a - price) / (a - b)
        else:
            if a >= price:
                return float(k)
            if b >= price:
                return k + (price - a) / (b - a)
    return 3.0  # unreachable when the bar check above passed; kept for numba's type inference
