"""The emulator's shared state: clock, markets, candles, a lock, and room for the trading part.

Route providers receive one `EmulatorState`. The trading part hangs its own state off
`state.extensions["<name>"]` (accounts, orders, rate-limit counters); anything there with a
`snapshot()` method appears in `state.snapshot()`, which tests use to inspect the emulator.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from core.timeframes import timeframe_ms
from exchange.emulator.candles import CandleBook
from exchange.emulator.clock import VirtualClock
from exchange.emulator.markets import EmulatorMarket, make_market, split_pair


@dataclass
class RequestRecord:
    method: str
    path: str
    query: dict[str, str]
    status: int
    venue: str


@dataclass
class EmulatorState:
    clock: VirtualClock = field(default_factory=lambda: VirtualClock(speed=0.0))
    markets: dict[str, EmulatorMarket] = field(default_factory=dict)
    candles: CandleBook = field(default_factory=CandleBook)
    # Held by handlers that read-modify-write shared state (order matching, balances).
    lock: threading.RLock = field(default_factory=threading.RLock)
    extensions: dict[str, Any] = field(default_factory=dict)
    # The last requests served (newest last), for tests that check what a client sent.
    requests: deque[RequestRecord] = field(default_factory=lambda: deque(maxlen=10_000))

    @classmethod
    def from_frames(
        cls,
        frames: dict[tuple[str, str], pd.DataFrame],
        clock: VirtualClock | None = None,
        market_overrides: dict[str, dict[str, Any]] | None = None,
    ) -> EmulatorState:
        """`frames[(pair, timeframe)]` in the shared candle contract. With no clock given, time is
        frozen at the close of the newest candle, so every stored candle is served closed."""
        state = cls(clock=clock or VirtualClock(speed=0.0))
        for (pair, tf), df in frames.items():
            state.add_candles(pair, tf, df, market_overrides)
        if clock is None:
            span = state.candles.span_ms()
            if span:
                state.clock.set(span[1])
        return state

    def add_candles(
        self,
        pair: str,
        tf: str,
        df: pd.DataFrame,
        market_overrides: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        timeframe_ms(tf)  # validates the timeframe early
        base, quote = split_pair(pair)
        symbol_id = base + quote
        with self.lock:
            self.candles.add(symbol_id, tf, df)
            if symbol_id not in self.markets:
                price = float(df["close"].iloc[-1]) if len(df) else None
                overrides = (market_overrides or {}).get(symbol_id)
                self.markets[symbol_id] = make_market(f"{base}/{quote}", price, overrides)

    def market(self, symbol_id: str) -> EmulatorMarket | None:
        return self.markets.get(symbol_id.upper())

    def now_ms(self) -> int:
        return self.clock.now_ms()

    def snapshot(self) -> dict[str, Any]:
        """A JSON-able picture of the emulator for tests and `aiotrade emulator` logs."""
        with self.lock:
            snap: dict[str, Any] = {
                "now_ms": self.now_ms(),
                "speed": self.clock.speed,
                "markets": {
                    sid: {
                        "pair": m.pair,
                        "status": m.status,
                        "tick_size": m.rules.tick_size,
                        "lot_size": m.rules.lot_size,
                        "min_qty": m.rules.min_qty,
                        "min_notional": m.rules.min_notional,
                        "timeframes": self.candles.stored_timeframes(sid),
                    }
                    for sid, m in sorted(self.markets.items())
                },
                "requests_served": len(self.requests),
            }
            for name, ext in self.extensions.items():
                if hasattr(ext, "snapshot"):
                    snap[name] = ext.snapshot()
            return snap
