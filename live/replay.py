"""Replay: the whole live stack against the in-process emulator, on stored candles, as fast as it goes.

    runner ─ ccxt (real client, signed requests over loopback HTTP) ─ emulator (matching on the shared
    fill model) ─ stored candles; one virtual clock that the runner's `DrivingClock` moves bar by bar.

Nothing is mocked: the same `Runner`, `PairTrader`, state DB and venue adapter as `aiotrade live`, so a
replay is how users (and tests) try the runner offline. Orders are matched on the base timeframe's
candles, so a replay is comparable fill for fill with `aiotrade backtest` on the same candles.
The emulator account starts with `risk.capital_quote` of each pair's quote currency.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.candles import fmt_ts
from core.config import Config
from core.errors import ConfigError, DataError
from core.secrets import Credentials
from core.timeframes import timeframe_ms
from exchange.ccxt_flows import RetryPolicy
from exchange.ccxt_venue import CcxtVenue
from exchange.emulator import EmulatorServer, EmulatorState, VirtualClock
from exchange.emulator.accounts import AccountSpec
from exchange.emulator.binance_trading import register_binance_trading_routes
from exchange.emulator.bitget_trading import register_bitget_trading_routes
from exchange.emulator.faults import FaultInjector
from exchange.emulator.loading import state_from_store
from exchange.emulator.matching import FillPolicy
from exchange.emulator.server import default_providers
from exchange.emulator.trading import TradingState, install_trading
from live.clock import DrivingClock
from live.policy_source import ActivePolicy
from live.runner import PolicyFeed, Runner
from live.state import StateStore

log = logging.getLogger(__name__)

# The emulator's own test account (not a real key): the replay signs requests like live trading does.
REPLAY_KEY, REPLAY_SECRET, REPLAY_PASSPHRASE = "replay-key", "replay-secret", "replay-pass"
FAST_RETRY = RetryPolicy(attempts=6, base_delay_s=0.01, max_delay_s=0.1, max_wait_s=5.0)


@dataclass
class ReplayEnv:
    """A started emulator with one account, and a venue adapter signed in to it."""

    server: EmulatorServer
    trading: TradingState
    faults: FaultInjector
    venue: CcxtVenue
    clock: DrivingClock
    account: str = "replay"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def state(self) -> EmulatorState:
        return self.server.state

    def close(self) -> None:
        self.venue.close()
        self.faults.close()
        self.server.stop()


def start_emulator(state: EmulatorState, cfg: Config, *, balances: dict[str, float] | None = None,
                   fill_policy: FillPolicy | None = None, timeout_s: float = 5.0,
                   retry: RetryPolicy = FAST_RETRY) -> ReplayEnv:
    """Emulator (both venues, trading routes, fault injector) + a signed CcxtVenue on it."""
    quotes = {p.split("/")[1] for p in cfg.market.pairs}
    funds = balances if balances is not None else {q: cfg.risk.capital_quote for q in quotes}
    trading = install_trading(state, [AccountSpec("replay", REPLAY_KEY, REPLAY_SECRET, REPLAY_PASSPHRASE, funds)],
                              fill_policy, match_timeframe=cfg.market.base_timeframe)
    server = EmulatorServer(state, providers=[*default_providers(), register_binance_trading_routes,
                                              register_bitget_trading_routes])
    faults = FaultInjector()
    server.router.use(faults)
    server.start()
    creds = Credentials(cfg.exchange.name, REPLAY_KEY, REPLAY_SECRET, REPLAY_PASSPHRASE)
    venue = CcxtVenue.connect(cfg.exchange.name, credentials=creds, base_url=server.url, rate_limit=False,
                              timeout_s=timeout_s, retry=retry,
                              fees_pct=(cfg.exchange.maker_fee_pct, cfg.exchange.taker_fee_pct))
    venue.follow_driven_clock(lambda: int(state.clock.now_ms()))  # signed timestamps follow the virtual clock
    clock = DrivingClock(state.clock)
    return ReplayEnv(server, trading, faults, venue, clock)


def load_replay_state(data: str | Path, cfg: Config, start_ms: int) -> EmulatorState:
    """The stored candles of the configured pairs, the virtual clock at the first bar's close."""
    bar_ms = timeframe_ms(cfg.market.base_timeframe)
    clock = VirtualClock(start_ms=start_ms + bar_ms, speed=0.0)
    state = state_from_store(data, pairs=list(cfg.market.pairs), clock=clock)
    for pair in cfg.market.pairs:
        span = state.candles.span_ms(pair.replace("/", ""))
        if pair.replace("/", "") not in state.markets or span is None:
            raise DataError(f"no {pair} candles under {data}",
                            f"import or download {pair} {cfg.market.base_timeframe} candles into that store first")
        if not span[0] <= start_ms < span[1] - bar_ms:
            raise DataError(f"the replay starts at {fmt_ts(start_ms)}, but {data} holds {pair} candles from "
                            f"{fmt_ts(span[0])} to {fmt_ts(span[1])}", "pick --from inside that range")
    return state


def compile_first_prediction(active: ActivePolicy, bar_ms: int, end_ms: int) -> None:
    """Predict once on made-up candles, before the replay's clock runs. The first prediction compiles
    the feature kernels (seconds on a fresh machine): paid here, not inside the first bar."""
    n = max(int(active.warmup_bars), 1) + 8
    ts = end_ms - np.arange(n, 0, -1, dtype=np.int64) * bar_ms
    close = 100.0 * np.exp(0.001 * np.sin(np.arange(n, dtype=np.float64) / 7.0).cumsum())
    ohlcv = np.column_stack([close, close * 1.001, close * 0.999, close, np.full(n, 10.0)])
    try:
        active.predict("warm-up", (ts, ohlcv))
    except Exception as e:  # noqa: BLE001 - only a warm-up: the first real bar reports any real problem
        log.debug("warm-up prediction failed: %r", e)


def run_replay(cfg: Config, env: ReplayEnv, store: StateStore, active: ActivePolicy, start_ms: int, end_ms: int,
               *, feed: PolicyFeed | None = None, stop: threading.Event | None = None,
               keep_reports: bool = False, on_bar: Any = None) -> Runner:
    """Trade bars opening in [start_ms, end_ms) through the live stack; returns the finished runner."""
    bar_ms = timeframe_ms(cfg.market.base_timeframe)
    if end_ms <= start_ms:
        raise ConfigError(f"replay range is empty: --to {end_ms} is not after --from {start_ms}",
                          "pass --from before --to")
    compile_first_prediction(active, bar_ms, start_ms)
    if env.state.clock.now_ms() != start_ms + bar_ms:
        env.state.clock.set(start_ms + bar_ms)
    # Act at the close (orders rest from the next bar, as in the backtest). Nobody else touches the
    # emulator account, so only bars whose candle reached an order need a sync with it.
    live_cfg = cfg.live.model_copy(update={"candle_delay_s": 0.0, "full_sync_every_bars": 10_000})
    runner = Runner(cfg.model_copy(update={"live": live_cfg}), env.venue, store, active, env.clock, feed=feed,
                    stop=stop, first_bar_ts=start_ms, until_ms=end_ms, mode="replay", keep_reports=keep_reports,
                    on_bar=on_bar, candle_polls=1)  # the virtual clock stands still: a missing candle stays missing
    runner.run()
    return runner
