"""Venues under contract test, all driven through the same sync interface.

Every venue trades BTC/USDT on the bundled 2023 5m candles served by a fresh emulator per test:
emulator-binance and emulator-bitget through real ccxt clients (sync; Binance also async, run on a
private event loop), and the paper venue with the emulator as its market-data source.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from core.secrets import Credentials
from exchange.ccxt_flows import RetryPolicy
from exchange.ccxt_venue import AsyncCcxtVenue, CcxtVenue
from exchange.emulator import EmulatorServer, EmulatorState, VirtualClock
from exchange.emulator.accounts import Account, AccountSpec
from exchange.emulator.binance_trading import register_binance_trading_routes
from exchange.emulator.bitget_trading import register_bitget_trading_routes
from exchange.emulator.faults import FaultInjector
from exchange.emulator.matching import FillPolicy
from exchange.emulator.server import default_providers
from exchange.emulator.trading import TradingState, install_trading
from exchange.paper import PaperVenue

FIVE_MIN_MS = 300_000
SYMBOL = "BTC/USDT"
# Distinctive, so a test can grep logs for them.
KEY, SECRET, PASSPHRASE = "ctKEYq7Xw2Lp9s", "ctSECRETv4Nd8Hj1", "ctPASSm3Rf6Kz"
BALANCES = {"USDT": 10_000.0, "BTC": 0.5}
START_ROW = 400
VENUE_KINDS = ("binance-sync", "binance-async", "bitget-sync", "paper")
FAST_RETRY = RetryPolicy(attempts=4, base_delay_s=0.01, max_delay_s=0.05, max_wait_s=5.0)


class SyncOverAsync:
    """The sync port over an async venue: each coroutine runs to completion on a private loop."""

    def __init__(self, venue: AsyncCcxtVenue) -> None:
        self.venue = venue
        self._loop = asyncio.new_event_loop()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.venue, name)
        if not asyncio.iscoroutinefunction(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._loop.run_until_complete(attr(*args, **kwargs))

        return call

    def close(self) -> None:
        self._loop.run_until_complete(self.venue.close())
        self._loop.close()


def make_emulator(
    candles: pd.DataFrame,
    start_row: int = START_ROW,
    accounts: list[AccountSpec] | None = None,
    fill_policy: FillPolicy | None = None,
) -> tuple[EmulatorServer, TradingState, FaultInjector]:
    """A started emulator with both venues' routes, a wall-paced clock 1 s into candle `start_row`."""
    clock = VirtualClock(start_ms=int(candles.ts.iloc[start_row]) + 1000, speed=1.0)
    state = EmulatorState.from_frames({(SYMBOL, "5m"): candles}, clock=clock)
    trading = install_trading(
        state, accounts or [AccountSpec("contract", KEY, SECRET, PASSPHRASE, dict(BALANCES))], fill_policy
    )
    server = EmulatorServer(
        state,
        providers=[*default_providers(), register_binance_trading_routes, register_bitget_trading_routes],
    )
    faults = FaultInjector()
    server.router.use(faults)
    return server.start(), trading, faults


def connect(kind: str, url: str, credentials: Credentials | None = None, **kw: Any) -> Any:
    """A sync-interface ccxt venue of `kind` ("binance-sync", "binance-async", "bitget-sync")."""
    name, mode = kind.split("-")
    creds = credentials if credentials is not None else Credentials(name, KEY, SECRET, PASSPHRASE)
    kw.setdefault("retry", FAST_RETRY)
    kw.setdefault("timeout_s", 5.0)
    if mode == "async":
        return SyncOverAsync(
            AsyncCcxtVenue.connect(name, credentials=creds, base_url=url, rate_limit=False, **kw)
        )
    return CcxtVenue.connect(name, credentials=creds, base_url=url, rate_limit=False, **kw)


@dataclass
class Harness:
    kind: str
    venue: Any
    server: EmulatorServer
    trading: TradingState
    faults: FaultInjector
    candles: pd.DataFrame
    paper: PaperVenue | None = None
    data: CcxtVenue | None = None

    def now_ms(self) -> int:
        return self.server.state.now_ms()

    def row_at(self, ts_ms: int) -> int:
        """Index of the candle open at `ts_ms`."""
        return int(self.candles.ts.searchsorted(ts_ms, "right")) - 1

    def next_row(self) -> int:
        """The first candle an order placed now may fill on."""
        nxt = math.ceil(self.now_ms() / FIVE_MIN_MS) * FIVE_MIN_MS
        return int(self.candles.ts.searchsorted(nxt, "left"))

    def advance_bars(self, n: int) -> None:
        self.server.state.clock.advance(n * FIVE_MIN_MS)
        if self.paper is None and hasattr(self.venue, "sync_clock"):
            self.venue.sync_clock()  # the client's clock offset follows the jump (tested on its own elsewhere)

    def set_fill_policy(self, policy: FillPolicy) -> None:
        if self.paper is not None:
            self.paper.engine.policy = policy
        else:
            self.trading.set_fill_policy(policy)

    @property
    def account(self) -> Account:
        return self.paper.account if self.paper is not None else self.trading.account("contract")

    def requests(self, method: str, path_part: str) -> int:
        return sum(1 for r in self.server.state.requests if r.method == method and path_part in r.path)

    def close(self) -> None:
        self.venue.close()
        if self.data is not None:
            self.data.close()
        self.faults.close()
        self.server.stop()
