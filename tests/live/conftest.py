"""Helpers for the live tests: a config that trades often, the bundled candles, emulator + runner wiring."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import pytest

from core.config import Config, config_from_dict
from live.logs import LOGGER_NAME
from live.replay import ReplayEnv, load_replay_state, start_emulator
from live.state import ACTIVE, StateStore

SAMPLE = Path(__file__).resolve().parents[2] / "pipeline" / "sample_data"
DAY_MS = 86_400_000
# 2023-01-03 00:00 UTC: two days into the bundled sample (warm-up history before it).
START_MS = 1672531200000 + 2 * DAY_MS
BAR_MS = 300_000


def dca_config(**live_overrides) -> Config:
    """A small DCA that completes cycles every few bars: market entries, safety orders, take-profit
    re-pricing and cancels all happen in a short replay."""
    return config_from_dict({
        "market": {"pairs": ["BTC/USDT"], "base_timeframe": "5m", "feature_timeframes": ["1h"]},
        "strategy": {"engine": "dca", "dca": {
            "base_order_quote": 50.0, "safety_order_quote": 50.0, "max_safety_orders": 3, "price_deviation_pct": 0.2,
            "step_scale": 1.0, "volume_scale": 1.0, "take_profit_pct": 0.2}},
        "risk": {"capital_quote": 1000.0, "max_allocation_per_pair_pct": 100.0, "max_exposure_pct": 90.0},
        "live": {"candle_delay_s": 0.0, "retry_initial_s": 0.01, "retry_max_s": 0.05, **live_overrides},
    })


def busy_config(pairs=("BTC/USDT",), **live_overrides) -> Config:
    """A tight grid that fills every few bars, so short replays exercise the whole order cycle."""
    return config_from_dict({
        "market": {"pairs": list(pairs), "base_timeframe": "5m", "feature_timeframes": ["1h"]},
        "strategy": {"engine": "grid", "grid": {"grid_step_pct": 0.1, "levels": 6, "order_size_quote": 60.0}},
        "risk": {"capital_quote": 1000.0 * len(pairs), "max_allocation_per_pair_pct": 100.0, "max_exposure_pct": 90.0},
        "live": {"candle_delay_s": 0.0, "retry_initial_s": 0.01, "retry_max_s": 0.05, **live_overrides},
    })


@pytest.fixture()
def runner_records():
    """Every record the runner's logger emits during the test (it does not propagate to the root)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger(LOGGER_NAME)
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


@pytest.fixture()
def replay_env(request) -> ReplayEnv:
    cfg = getattr(request, "param", None) or busy_config()
    env = start_emulator(load_replay_state(SAMPLE, cfg, START_MS), cfg)
    env.extra["cfg"] = cfg
    yield env
    env.close()


def assert_state_matches_exchange(store: StateStore, env: ReplayEnv, pairs, capital_per_pair: float) -> None:
    """The DB's view equals the emulator's: open orders, every fill, and the balances they imply."""
    acc = env.trading.account(env.account)
    env.trading.sync()
    venue_open = {o.client_order_id: o for o in acc.open_orders()}
    db_active = {i.client_id: i for p in pairs for i in store.intents(p, ACTIVE)}
    assert set(venue_open) == set(db_active), "open orders differ between the DB and the exchange"
    for cid, o in venue_open.items():
        assert abs(o.orig_qty - o.executed_qty - db_active[cid].remaining) < 1e-9, cid
    # every exchange order came from exactly one intent; none was placed twice
    ids = Counter(o.client_order_id for o in acc.orders.values())
    assert max(ids.values(), default=1) == 1, "a client order id was placed twice"
    assert set(ids) <= {i.client_id for p in pairs for i in store.intents(p)}
    # every trade recorded once, nothing missing
    venue_trades = {(str(t.order_id), str(t.trade_id)) for t in acc.trades}
    db_fills = {tuple(f.fill_id.split(":")) for p in pairs for f in store.fills(p)}
    assert db_fills == venue_trades, f"fills differ: missing {venue_trades - db_fills}, extra {db_fills - venue_trades}"
    # balances: the account started with the capital in quote; the DB's cash and inventory must add up
    bal = acc.snapshot()["balances"]
    quote_total = sum(store.position(p).cash_quote for p in pairs)
    start_quote = capital_per_pair * len(pairs)
    venue_quote = bal.get(pairs[0].split("/")[1], {"free": 0, "locked": 0})
    assert abs(venue_quote["free"] + venue_quote["locked"] - quote_total) < 1e-6 * start_quote
    for p in pairs:
        base = p.split("/")[0]
        b = bal.get(base, {"free": 0.0, "locked": 0.0})
        assert abs(b["free"] + b["locked"] - store.position(p).base) < 1e-9, p
