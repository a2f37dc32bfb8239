"""The emulator's matching engine on real candles: fills as a direct replay of the shared fill
model predicts (the oracle), the bar-eligibility rule, fees, partial fills, balance conservation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from exchange.emulator import EmulatorState, VirtualClock
from exchange.emulator.accounts import CANCELED, FILLED, Account, AccountSpec
from exchange.emulator.matching import (
    BALANCE,
    DUPLICATE,
    LOT_SIZE,
    NOTIONAL,
    PRICE_FILTER,
    FillPolicy,
    Reject,
)
from exchange.emulator.trading import TradingState, install_trading
from strategies.fill_model import fill_time
from tests.exchange.candle_fixtures import sample_5m

FIVE = 300_000
START = {"USDT": 1_000_000.0, "BTC": 50.0}


@pytest.fixture(scope="module")
def candles() -> pd.DataFrame:
    return sample_5m("BTC/USDT").iloc[:400].reset_index(drop=True)


def setup(
    candles: pd.DataFrame, row: int = 10, offset_ms: int = 0, policy: FillPolicy | None = None
) -> tuple[TradingState, Account]:
    state = EmulatorState.from_frames(
        {("BTC/USDT", "5m"): candles}, clock=VirtualClock(int(candles.ts[row]) + offset_ms, speed=0)
    )
    trading = install_trading(state, [AccountSpec("t", "k", "s", "p", dict(START))], policy)
    return trading, trading.account("t")


def place(
    trading: TradingState,
    acc: Account,
    side: str,
    qty: float,
    price: float | None,
    cid: str,
    kind: str = "limit",
):
    m = trading.state.markets["BTCUSDT"]
    return trading.engine.place(acc, m, side, kind, qty, price, cid, trading.state.now_ms())


def oracle_fill_row(candles: pd.DataFrame, is_buy: bool, price: float, placed_ms: int) -> int | None:
    """First candle opening at/after the placement on which the fill model fills the order."""
    first = int(np.searchsorted(candles.ts.to_numpy(), placed_ms, "left"))
    for i in range(first, len(candles)):
        r = candles.iloc[i]
        if fill_time(is_buy, price, r.open, r.high, r.low, r.close, False) >= 0:
            return i
    return None


def test_fills_follow_the_shared_fill_model_bar_for_bar(candles: pd.DataFrame) -> None:
    rng = np.random.default_rng(3)
    trading, acc = setup(candles, row=20, offset_ms=12_345)
    placed = {}
    for step in range(40):  # place a few orders, move the clock a random number of bars, repeat
        for k in range(3):
            # The last closed candle's close: orders around the market, some filling soon, some not.
            ref = float(
                candles.close.iloc[int(np.searchsorted(candles.ts, trading.state.now_ms(), "right")) - 2]
            )
            side = "buy" if rng.random() < 0.5 else "sell"
            price = round(ref * (1 + rng.normal(0, 0.004)), 2)
            o = place(trading, acc, side, 0.01, price, f"o{step}_{k}")
            placed[o.order_id] = (side == "buy", price, trading.state.now_ms())
        trading.state.clock.advance(int(rng.integers(1, 4)) * FIVE + int(rng.integers(0, FIVE)))
        trading.sync()
    end = trading.state.now_ms()
    fills = {t.order_id: t for t in acc.trades}
    assert len(fills) > 40  # the replay really exercised fills
    for oid, (is_buy, price, placed_ms) in placed.items():
        row = oracle_fill_row(candles, is_buy, price, placed_ms)
        closed_by_end = row is not None and int(candles.ts[row]) + FIVE <= end
        if closed_by_end:
            t = fills[oid]
            assert t.price == price and candles.ts[row] <= t.ts_ms < candles.ts[row] + FIVE
            assert acc.orders[oid].status == FILLED
        else:
            assert oid not in fills and acc.orders[oid].is_open


def test_an_order_placed_at_a_bar_boundary_trades_that_bar_one_placed_inside_waits(
    candles: pd.DataFrame,
) -> None:
    row = 30
    price = round(float(candles.low[row]) + 0.5, 2)  # bar `row` trades through it
    at_boundary, acc = setup(candles, row=row)
    o = place(at_boundary, acc, "buy", 0.01, price, "edge")
    at_boundary.state.clock.advance(FIVE)
    at_boundary.sync()
    assert acc.orders[o.order_id].status == FILLED and acc.trades[0].ts_ms >= candles.ts[row]
    inside, acc2 = setup(candles, row=row, offset_ms=1)
    o2 = place(inside, acc2, "buy", 0.01, price, "inside")
    assert o2.eligible_from_ms == candles.ts[row + 1]
    inside.state.clock.advance(FIVE)
    inside.sync()
    assert acc2.orders[o2.order_id].is_open  # bar `row` does not count for it


def test_fills_inside_one_bar_are_ordered_along_the_intrabar_path(candles: pd.DataFrame) -> None:
    row = next(
        i
        for i in range(40, 400)
        if candles.close[i] >= candles.open[i] and candles.high[i] - candles.low[i] > 20
    )
    r = candles.iloc[row]
    trading, acc = setup(candles, row=row)
    sell = place(trading, acc, "sell", 0.01, round(r.high - 1, 2), "sell")  # reached late (up bar: o-l-h-c)
    buy = place(trading, acc, "buy", 0.01, round(r.low + 1, 2), "buy")  # reached early
    trading.state.clock.advance(FIVE)
    trading.sync()
    assert [t.order_id for t in acc.trades] == [buy.order_id, sell.order_id]


def test_fees_and_balance_conservation(candles: pd.DataFrame) -> None:
    trading, acc = setup(candles, row=50, offset_ms=1)
    rng = np.random.default_rng(11)
    for i in range(60):
        ref = float(candles.close[50 + i // 3])
        side = "buy" if i % 2 else "sell"
        o = place(trading, acc, side, 0.02, round(ref * (1 + rng.normal(0, 0.003)), 2), f"c{i}")
        if i % 5 == 0:
            trading.engine.cancel(acc, trading.state.markets["BTCUSDT"], o, trading.state.now_ms())
        trading.state.clock.advance(FIVE // 3)
        trading.sync()
    flows = {"USDT": START["USDT"], "BTC": START["BTC"]}
    for t in acc.trades:
        sign = 1 if t.side == "buy" else -1
        flows["BTC"] += sign * t.qty - (t.fee if t.fee_asset == "BTC" else 0)
        flows["USDT"] -= sign * t.quote_qty + (t.fee if t.fee_asset == "USDT" else 0)
        assert t.fee == pytest.approx((t.qty if t.side == "buy" else t.quote_qty) * 0.001)
    for asset, total in flows.items():
        b = acc.balance(asset)
        assert b.free + b.locked == pytest.approx(total, abs=1e-9) and b.free >= 0 and b.locked >= 0
    locked_quote = sum(o.locked_left for o in acc.open_orders() if o.side == "buy")
    assert acc.balance("USDT").locked == pytest.approx(locked_quote, abs=1e-9)
    assert any(o.status == CANCELED for o in acc.orders.values()) and acc.trades


def test_partial_fills_per_bar_and_volume_cap(candles: pd.DataFrame) -> None:
    row = 60
    price = round(float(candles.high[row : row + 6].max()) + 1, 2)  # fills on every bar from `row`
    trading, acc = setup(candles, row=row, policy=FillPolicy(max_fill_fraction=0.25))
    o = place(trading, acc, "buy", 0.1, price, "quarter")
    trading.state.clock.advance(2 * FIVE)
    trading.sync()
    assert [t.qty for t in acc.trades] == [0.025, 0.025] and o.status == "PARTIALLY_FILLED"
    trading.state.clock.advance(3 * FIVE)
    trading.sync()
    assert o.status == FILLED and len(acc.trades) == 4
    vol_cap, acc2 = setup(candles, row=row, policy=FillPolicy(volume_cap_fraction=1e-5))
    o2 = place(vol_cap, acc2, "buy", 0.1, price, "cap")
    vol_cap.state.clock.advance(FIVE)
    vol_cap.sync()
    expected = max(0.00001, np.floor(candles.volume[row] * 1e-5 / 0.00001 + 1e-9) * 0.00001)
    assert acc2.trades[0].qty == pytest.approx(min(0.1, expected)) and o2.executed_qty < 0.1


@pytest.mark.parametrize(
    "side,qty,price,kind",
    [
        ("buy", 0.001, 20_000.005, PRICE_FILTER),
        ("buy", 0.0000123, 20_000.0, LOT_SIZE),
        ("buy", 0.0001, 20_000.0, NOTIONAL),
        ("buy", 100.0, 20_000.0, BALANCE),
        ("sell", 60.0, 20_000.0, BALANCE),
    ],
)
def test_rejections(candles: pd.DataFrame, side: str, qty: float, price: float, kind: str) -> None:
    trading, acc = setup(candles)
    with pytest.raises(Reject) as e:
        place(trading, acc, side, qty, price, "r")
    assert e.value.kind == kind
    assert acc.orders == {} and acc.balance("USDT").locked == 0


def test_duplicate_client_id_is_refused(candles: pd.DataFrame) -> None:
    trading, acc = setup(candles)
    place(trading, acc, "buy", 0.001, 10_000.0, "dup")
    with pytest.raises(Reject) as e:
        place(trading, acc, "buy", 0.001, 10_000.0, "dup")
    assert e.value.kind == DUPLICATE and len(acc.orders) == 1


def test_market_order_fills_at_the_open_of_the_bar_in_progress(candles: pd.DataFrame) -> None:
    trading, acc = setup(candles, row=70, offset_ms=60_000)
    o = place(trading, acc, "buy", 0.01, None, "m", kind="market")
    assert o.status == FILLED and o.avg_price == candles.open[70]
    assert acc.trades[0].is_maker is False and acc.trades[0].fee_asset == "BTC"
