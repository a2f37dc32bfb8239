"""A runner away for more than a day: on restart the sync records every fill of the gap, once.

Binance answers GET /api/v3/myTrades for at most 24 h and 1000 trades per request, Bitget
GET /api/v2/spot/trade/fills 100 fills per request, newest first (the emulator enforces both, see
`exchange.emulator.binance_trading` / `bitget_trading`). Here resting buys fill a little on every
5m bar (FillPolicy.max_fill_fraction) for 26 h of virtual time while no sync runs: ~1250 trades,
more than one page on either venue and spread over more than one Binance window. Real ccxt clients
talk to the loopback emulator; nothing is mocked.
"""

from __future__ import annotations

import pytest

from core.config import config_from_dict
from core.errors import ExchangeError
from exchange.emulator.matching import FillPolicy
from exchange.port import OrderRequest
from live.replay import ReplayEnv, load_replay_state, start_emulator
from live.state import OPEN, StateStore
from live.sync import OrderSync
from tests.live.conftest import BAR_MS, DAY_MS, SAMPLE, START_MS, assert_state_matches_exchange

PAIR, CAPITAL = "BTC/USDT", 1000.0
GAP_MS = DAY_MS + 2 * 3_600_000  # 26 h away
ORDERS = 4  # x ~312 bars, one partial fill each per bar: > 1000 trades
TRADE_PATHS = {"binance": "/api/v3/myTrades", "bitget": "/api/v2/spot/trade/fills"}


def _env(venue: str) -> ReplayEnv:
    cfg = config_from_dict({
        "exchange": {"name": venue},
        "market": {"pairs": [PAIR], "base_timeframe": "5m", "feature_timeframes": ["1h"]},
        "strategy": {"engine": "grid", "grid": {"grid_step_pct": 0.1, "levels": 6, "order_size_quote": 60.0}},
        "risk": {"capital_quote": CAPITAL, "max_allocation_per_pair_pct": 100.0, "max_exposure_pct": 90.0},
    })
    return start_emulator(load_replay_state(SAMPLE, cfg, START_MS), cfg,
                          fill_policy=FillPolicy(max_fill_fraction=0.001))


def _place_resting_buys(env: ReplayEnv, store: StateStore, now: int) -> None:
    """Buys above the market: every bar reaches them, and each fills one lot per bar."""
    store.init_position(PAIR, CAPITAL, now)
    for slot in range(ORDERS):
        price = 20_000.0 + slot
        it = store.add_intent(pair=PAIR, side="buy", role="entry", slot=slot, price=price, amount=0.01,
                              bar_ts=START_MS, now_ms=now)
        order = env.venue.create_order(OrderRequest(PAIR, "buy", "limit", 0.01, it.client_id, price), fresh=True)
        store.set_status(it.client_id, OPEN, now, venue_order_id=order.id)


def _jump(env: ReplayEnv, ms: int) -> None:
    env.state.clock.set(ms)  # the replay's venue reads this clock before each request


def _venue_trades(env: ReplayEnv) -> list:
    env.trading.sync()
    return list(env.trading.account(env.account).trades)


@pytest.fixture(params=["binance", "bitget"])
def gap(request, tmp_path):
    env = _env(request.param)
    store = StateStore(tmp_path / "state.db")
    now = env.clock.now_ms()
    _place_resting_buys(env, store, now)
    assert OrderSync(store, env.venue, PAIR, "USDT", "aio", BAR_MS).sync(now).new_fills == 0
    _jump(env, now + GAP_MS)
    yield request.param, env, store, now
    store.close()
    env.close()


def test_a_single_since_query_would_miss_fills(gap):
    """The risk being fixed: what one `fetch_my_trades(since)` returns is far from the whole gap."""
    venue, env, _, t0 = gap
    every = _venue_trades(env)
    assert len(every) > 1000 and every[-1].ts_ms - every[0].ts_ms > DAY_MS
    client = env.venue.client  # raw ccxt: align its clock with the virtual one, as the venue does per request
    client.options["timeDifference"] = client.milliseconds() - env.state.clock.now_ms()
    naive = client.fetch_my_trades(PAIR, t0)
    assert 0 < len(naive) < len(every)


def test_restart_after_a_day_away_records_every_fill_once(gap):
    venue, env, store, t0 = gap
    now = t0 + GAP_MS
    rep = OrderSync(store, env.venue, PAIR, "USDT", "aio", BAR_MS).sync(now)
    trades = _venue_trades(env)
    assert rep.new_fills == len(trades) > 1000
    assert_state_matches_exchange(store, env, [PAIR], CAPITAL)  # every fill once, cash and inventory
    for it in store.intents(PAIR):
        order = env.trading.account(env.account).order_by_client_id(it.client_id)
        assert it.filled == pytest.approx(order.executed_qty), it.client_id
    # A second sync finds nothing new: overlapping fetches are harmless.
    assert OrderSync(store, env.venue, PAIR, "USDT", "aio", BAR_MS).sync(now).new_fills == 0


def test_a_crash_in_the_middle_of_the_catch_up_resumes_without_loss(gap):
    venue, env, store, t0 = gap
    now = t0 + GAP_MS
    # The first page is answered, then every trade query fails for good (the runner dies).
    env.faults.error(401, "GET", TRADE_PATHS[venue], times=None, skip=1 if venue == "binance" else 12,
                     body={"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}
                     if venue == "binance" else {"code": "40006", "msg": "Invalid ACCESS_KEY"})
    with pytest.raises(ExchangeError):
        OrderSync(store, env.venue, PAIR, "USDT", "aio", BAR_MS).sync(now)
    recorded = len(store.fills(PAIR))
    assert 0 < recorded < len(_venue_trades(env))
    # The cursor moved with the recorded trades, never past them.
    cursor = int(store.get_meta(f"trades_synced_ms:{PAIR}"))
    assert t0 < cursor <= max(f.ts_ms for f in store.fills(PAIR)) + 2 * BAR_MS
    env.faults.clear()
    OrderSync(store, env.venue, PAIR, "USDT", "aio", BAR_MS).sync(now)
    assert_state_matches_exchange(store, env, [PAIR], CAPITAL)
