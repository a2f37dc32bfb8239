"""Live-only guards: the stale-data watchdog, the order-rate limit, and exchange-rule filtering.

Capital allocation, exposure, the drawdown kill switch and the daily loss limit are decided by the
strategies' risk module (`strategies.risk`), the same code the simulator runs; this module adds what
only a live process has: a wall clock that can run ahead of the data, and a request budget.
Every guard says *why* it acts, so the runner can log it and `aiotrade status` can show it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from core.market_rules import MarketRules
from live.reconcile import DesiredOrder


@dataclass
class StaleDataWatchdog:
    """No new closed candle within `max_missing_bars` bars: entries pause until data flows again."""

    timeframe_ms: int
    max_missing_bars: int = 2

    def check(self, pair: str, last_open_ts_ms: int | None, now_ms: int) -> str | None:
        """None when fresh; otherwise the reason entries are paused."""
        if last_open_ts_ms is None:
            return f"{pair}: no candle received yet; entries paused until one arrives"
        last_close_ms = last_open_ts_ms + self.timeframe_ms
        missing = (now_ms - last_close_ms) // self.timeframe_ms
        if missing >= self.max_missing_bars:
            minutes = (now_ms - last_close_ms) / 60_000
            return (f"{pair}: no new candle for {missing} bars ({minutes:.0f} min); entries paused "
                    f"(exchange data feed stalled or unreachable)")
        return None


@dataclass
class OrderRateLimiter:
    """At most `max_per_minute` order requests (creates + cancels) in any sliding 60 s window."""

    max_per_minute: int
    _sent_ms: deque[int] = field(default_factory=deque)

    def allow(self, now_ms: int) -> bool:
        while self._sent_ms and self._sent_ms[0] <= now_ms - 60_000:
            self._sent_ms.popleft()
        return len(self._sent_ms) < self.max_per_minute

    def record(self, now_ms: int) -> None:
        self._sent_ms.append(now_ms)

    def remaining(self, now_ms: int) -> int:
        self.allow(now_ms)
        return self.max_per_minute - len(self._sent_ms)


@dataclass(frozen=True)
class Dropped:
    order: DesiredOrder
    reason: str


def apply_rules(orders: Iterable[DesiredOrder], rules: MarketRules) -> tuple[list[DesiredOrder], list[Dropped]]:
    """Round every order to the venue's grid and drop what the venue would reject (dust, min notional).

    The engine already rounds with the same module; rounding again is idempotent and protects the
    venue from an engine bug. A sell below min notional is inventory *dust*: it stays in the position
    (reported), since the exchange would refuse to sell it.
    """
    ok: list[DesiredOrder] = []
    dropped: list[Dropped] = []
    for o in orders:
        # A market order is valued at its reference close; only its amount is rounded.
        price = o.price if o.market else rules.round_price(o.price, o.is_buy)
        amount = rules.round_amount(o.amount)
        why = rules.reject_reason(price, amount)
        if why is not None:
            kind = "dust" if o.side == "sell" else "too small"
            dropped.append(Dropped(o, f"{kind}: {o.side} {amount:g} @ {price:g}: {why}"))
            continue
        if price != o.price or amount != o.amount:
            o = replace(o, price=price, amount=amount)
        ok.append(o)
    return ok, dropped


def without_entries(orders: Iterable[DesiredOrder]) -> list[DesiredOrder]:
    """What remains when entries are paused (stale data, kill switch): the exits of held inventory."""
    return [o for o in orders if o.role == "exit"]
