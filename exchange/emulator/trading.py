"""The emulator's trading state: accounts by API key and the matching engine over the stored candles.

It lives in `state.extensions["trading"]`, so `state.snapshot()` shows balances and open orders.
Route providers call `trading_state(state)`; tests configure it first with `install_trading`:

    trading = install_trading(state, accounts=[AccountSpec("t", "k", "s", "p", {"USDT": 1000})],
                              fill_policy=FillPolicy(max_fill_fraction=0.5))
    ... requests ...
    trading.account("t").open_orders()

Every trading request first matches resting orders on the bars closed by `now` (`sync`), under
`state.lock`, so what a client sees is always the book as of the virtual clock.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from core.timeframes import timeframe_ms
from exchange.emulator.accounts import DEFAULT_ACCOUNTS, Account, AccountSpec
from exchange.emulator.candles import TS, View
from exchange.emulator.matching import FillPolicy, MatchingEngine
from exchange.emulator.router import Router
from exchange.emulator.state import EmulatorState

EXTENSION = "trading"
_CHUNK_BARS = 50_000


class CandleBars:
    """The matching engine's bars: one series per symbol from the emulator's candle book."""

    def __init__(self, state: EmulatorState, match_timeframe: str | None = None) -> None:
        self.state = state
        # None: the finest stored timeframe of each symbol.
        self.match_timeframe = match_timeframe
        # symbol -> its matching timeframe and bar length, for the candle book's version in
        # `_tfs_version` (read on every match).
        self._tfs: dict[str, tuple[str, int] | None] = {}
        self._tfs_version = -1
        # symbol -> (the candle view, its open times as Python ints) for `closed_bars`.
        self._ts_lists: dict[str, tuple[View, list[int]]] = {}

    def _tf_ms(self, symbol_id: str) -> tuple[str, int] | None:
        candles = self.state.candles
        if self._tfs_version != candles.version:
            self._tfs, self._tfs_version = {}, candles.version
        if symbol_id not in self._tfs:
            tf = self.match_timeframe
            if tf is None:
                tfs = candles.stored_timeframes(symbol_id)
                tf = tfs[0] if tfs else None
            self._tfs[symbol_id] = None if tf is None else (tf, timeframe_ms(tf))
        return self._tfs[symbol_id]

    def _tf(self, symbol_id: str) -> str | None:
        found = self._tf_ms(symbol_id)
        return found[0] if found else None

    def bar_ms(self, symbol_id: str) -> int | None:
        found = self._tf_ms(symbol_id)
        return found[1] if found else None

    def closed_bars(self, symbol_id: str, start_ms: int, now_ms: int) -> np.ndarray:
        tf = self._tf(symbol_id)
        if tf is None:
            return np.empty((0, 6))
        view = self.state.candles.view(symbol_id, tf)
        if view is not None and view.stored:
            # Stored bars with start_ms <= ts and ts + bar_ms <= now_ms, straight from the arrays
            # (what the window walk below returns for them). The open times as a Python list:
            # bisect on it is the shortest path for the one bar a match usually finds.
            cached = self._ts_lists.get(symbol_id)
            if cached is None or cached[0] is not view:
                cached = self._ts_lists[symbol_id] = (view, view.ts.tolist())
            ts = cached[1]
            first = bisect_left(ts, start_ms)
            last = bisect_right(ts, now_ms - view.tf_ms)
            return view.src.rows[first : max(first, last)]
        bar_ms = timeframe_ms(tf)
        chunks = []
        while True:
            rows = self.state.candles.window(symbol_id, tf, now_ms, start_ms=start_ms, limit=_CHUNK_BARS)
            rows = rows[rows[:, TS] + bar_ms <= now_ms]
            chunks.append(rows)
            if len(rows) < _CHUNK_BARS:
                break
            start_ms = int(rows[-1, TS]) + bar_ms
        return np.concatenate(chunks) if len(chunks) > 1 else chunks[0]

    def last_price(self, symbol_id: str, now_ms: int) -> float | None:
        return self.state.candles.last_price(symbol_id, now_ms)


class TradingState:
    def __init__(
        self,
        state: EmulatorState,
        accounts: Iterable[AccountSpec] = DEFAULT_ACCOUNTS,
        fill_policy: FillPolicy | None = None,
        match_timeframe: str | None = None,
    ) -> None:
        self.state = state
        self.engine = MatchingEngine(CandleBars(state, match_timeframe), fill_policy)
        self.accounts: dict[str, Account] = {}
        self._by_key: dict[str, Account] = {}
        # (now, candle version, market count, policy id) of the last match (see `sync`); None: none yet.
        self._synced: tuple[Any, ...] | None = None
        for spec in accounts:
            self.add_account(spec)

    def add_account(self, spec: AccountSpec) -> Account:
        if spec.key in self._by_key:
            raise ValueError(f"API key of account {spec.name!r} is already used")
        acc = Account(spec)
        with self.state.lock:
            self.accounts[spec.name] = acc
            self._by_key[spec.key] = acc
        return acc

    def by_key(self, key: str) -> Account | None:
        return self._by_key.get(key)

    def account(self, name: str) -> Account:
        return self.accounts[name]

    @property
    def fill_policy(self) -> FillPolicy:
        return self.engine.policy

    def set_fill_policy(self, policy: FillPolicy) -> None:
        """Switch partial fills on or off mid-test (takes effect on the next bar matched)."""
        with self.state.lock:
            self.engine.policy = policy

    def sync(self, now_ms: int | None = None) -> int:
        """Match resting orders on every bar closed by now; returns the number of fills.

        Every trading request syncs, and most come at a `now` already matched (a client acts
        several times per bar). Matching again then fills nothing: the engine's cursor is past
        every bar closed by `now`, a cancel frees no fill, and an order placed at `now` rests from
        the bar opening at or after it. So matching is skipped while the clock, the candles, the
        markets and the fill policy are unchanged and no order added since may fill on a bar that
        has closed (one placed by another path with an earlier timestamp re-matches)."""
        with self.state.lock:
            now = self.state.now_ms() if now_ms is None else now_ms
            key = (now, self.state.candles.version, len(self.state.markets), id(self.engine.policy))
            accounts = self.accounts.values()
            if key == self._synced and all(
                a.added_eligible_ms is None or a.added_eligible_ms >= now for a in accounts
            ):
                return 0
            fills = self.engine.match(accounts, dict(self.state.markets), now)
            for a in accounts:
                a.added_eligible_ms = None
            self._synced = key
            return fills

    def snapshot(self) -> dict[str, Any]:
        with self.state.lock:
            self.sync()
            return {
                "fill_policy": vars(self.engine.policy).copy(),
                "accounts": {name: acc.snapshot() for name, acc in sorted(self.accounts.items())},
            }


def install_trading(
    state: EmulatorState,
    accounts: Iterable[AccountSpec] = DEFAULT_ACCOUNTS,
    fill_policy: FillPolicy | None = None,
    match_timeframe: str | None = None,
) -> TradingState:
    """Create (or replace) the trading state of `state`; call before the trading routes serve."""
    trading = TradingState(state, accounts, fill_policy, match_timeframe)
    state.extensions[EXTENSION] = trading
    return trading


def trading_state(state: EmulatorState) -> TradingState:
    """The trading state of `state`, created with the default account when none was installed."""
    with state.lock:
        existing = state.extensions.get(EXTENSION)
        if existing is None:
            existing = install_trading(state)
        return existing


def trading_providers() -> list[Callable[[Router, EmulatorState], None]]:
    """The route providers of the trading endpoints (Binance and Bitget), for `EmulatorServer`."""
    from exchange.emulator.binance_trading import register_binance_trading_routes
    from exchange.emulator.bitget_trading import register_bitget_trading_routes

    return [register_binance_trading_routes, register_bitget_trading_routes]
