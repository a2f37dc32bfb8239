"""The venue port's contract, run against every venue: emulator-binance (sync and async ccxt),
emulator-bitget (sync ccxt) and the paper venue. Same calls, same expected answers."""

from __future__ import annotations

import math

import pytest

from core.errors import FatalExchangeError, InsufficientFundsError, InvalidOrderError, OrderNotFoundError
from exchange.emulator.matching import FillPolicy
from exchange.port import CANCELED, CLOSED, OPEN, OrderRequest, client_order_id
from tests.exchange.contract.harness import BALANCES, FIVE_MIN_MS, SYMBOL, Harness

FEE = 0.001
TICK = 0.01


def _tick_up(x: float) -> float:
    return round(math.ceil(x / TICK) * TICK, 2)


def limit(side: str, amount: float, price: float, intent: str) -> OrderRequest:
    return OrderRequest(SYMBOL, side, "limit", amount, client_order_id(intent), price)  # type: ignore[arg-type]


def test_markets_carry_the_exchange_rules(h: Harness) -> None:
    m = h.venue.load_markets()[SYMBOL]
    assert (m.base, m.quote, m.id) == ("BTC", "USDT", "BTCUSDT")
    assert (m.rules.tick_size, m.rules.lot_size, m.rules.min_notional) == (0.01, 0.00001, 5.0)
    assert (m.rules.maker_fee, m.rules.taker_fee) == (FEE, FEE)


def test_candles_are_closed_and_in_the_shared_contract(h: Harness) -> None:
    df = h.venue.fetch_candles(SYMBOL, "5m", limit=50)
    assert list(df.columns) == ["ts", "open", "high", "low", "close", "volume"]
    assert str(df.ts.dtype) == "int64" and all(str(df[c].dtype) == "float64" for c in df.columns[1:])
    assert len(df) == 50 and df.ts.is_monotonic_increasing and df.ts.is_unique
    # The newest closed candle is the one before the candle open now; nothing from the future.
    assert int(df.ts.iloc[-1]) + FIVE_MIN_MS <= h.now_ms() < int(df.ts.iloc[-1]) + 2 * FIVE_MIN_MS
    served = h.candles.set_index("ts").loc[df.ts]
    assert (
        served[["open", "high", "low", "close"]].to_numpy() == df[["open", "high", "low", "close"]].to_numpy()
    ).all()
    since = int(h.candles.ts.iloc[100])
    page = h.venue.fetch_candles(SYMBOL, "5m", since_ms=since, limit=20)
    assert page.ts.tolist() == h.candles.ts.iloc[100:120].tolist()


def test_starting_balance(h: Harness) -> None:
    bal = h.venue.fetch_balance()
    assert {a: (b.free, b.locked) for a, b in bal.items()} == {a: (v, 0.0) for a, v in BALANCES.items()}


def test_limit_order_lifecycle_locks_and_releases_funds(h: Harness) -> None:
    price = _tick_up(h.candles.close.iloc[399] * 0.5)  # far below the market: rests
    o = h.venue.create_order(limit("buy", 0.01234567, price, "lifecycle"))
    assert (o.status, o.side, o.type, o.price, o.amount, o.filled) == (
        OPEN,
        "buy",
        "limit",
        price,
        0.01234,
        0.0,
    )
    assert o.client_order_id == client_order_id("lifecycle")
    assert h.venue.fetch_balance()["USDT"].locked == pytest.approx(price * 0.01234)
    assert [x.id for x in h.venue.fetch_open_orders(SYMBOL)] == [o.id]
    assert h.venue.fetch_order(SYMBOL, order_id=o.id).client_order_id == o.client_order_id
    assert h.venue.fetch_order(SYMBOL, client_order_id=o.client_order_id).id == o.id
    c = h.venue.cancel_order(SYMBOL, order_id=o.id)
    assert (c.id, c.status, c.filled) == (o.id, CANCELED, 0.0)
    assert h.venue.fetch_open_orders(SYMBOL) == []
    usdt = h.venue.fetch_balance()["USDT"]
    assert (usdt.free, usdt.locked) == (BALANCES["USDT"], 0.0)
    # Cancelling again returns the final state instead of failing.
    assert h.venue.cancel_order(SYMBOL, client_order_id=o.client_order_id).status == CANCELED


def test_create_is_idempotent_on_the_client_order_id(h: Harness) -> None:
    price = _tick_up(h.candles.close.iloc[399] * 0.6)
    first = h.venue.create_order(limit("buy", 0.002, price, "same-intent"))
    again = h.venue.create_order(limit("buy", 0.002, price, "same-intent"))
    assert again.id == first.id
    assert len(h.venue.fetch_open_orders(SYMBOL)) == 1
    assert [o.order_id for o in h.account.orders.values() if o.client_order_id == first.client_order_id] == [
        int(first.id)
    ]


def test_limit_buy_fills_on_the_next_bar_at_its_price_with_the_maker_fee_in_base(h: Harness) -> None:
    row = h.next_row()
    price = _tick_up(h.candles.low.iloc[row] + 1.0)  # the next bar trades through it
    o = h.venue.create_order(limit("buy", 0.01, price, "fill-buy"))
    h.advance_bars(0)
    assert h.venue.fetch_order(SYMBOL, order_id=o.id).status == OPEN  # its bar has not closed yet
    h.advance_bars(2)
    done = h.venue.fetch_order(SYMBOL, order_id=o.id)
    assert (done.status, done.filled, done.average) == (CLOSED, 0.01, price)
    [t] = h.venue.fetch_trades(SYMBOL)
    assert (t.order_id, t.side, t.price, t.amount, t.is_maker) == (o.id, "buy", price, 0.01, True)
    assert (t.fee_cost, t.fee_asset) == (pytest.approx(0.01 * FEE), "BTC")
    assert h.candles.ts.iloc[row] <= t.ts_ms < h.candles.ts.iloc[row] + FIVE_MIN_MS
    bal = h.venue.fetch_balance()
    assert bal["BTC"].free == pytest.approx(BALANCES["BTC"] + 0.01 * (1 - FEE))
    assert bal["USDT"].free == pytest.approx(BALANCES["USDT"] - 0.01 * price)
    assert bal["USDT"].locked == 0.0


def test_limit_sell_pays_the_fee_in_quote(h: Harness) -> None:
    row = h.next_row()
    price = round(math.floor(h.candles.high.iloc[row] / TICK - 100) * TICK, 2)
    o = h.venue.create_order(limit("sell", 0.02, price, "fill-sell"))
    assert h.venue.fetch_balance()["BTC"].locked == pytest.approx(0.02)
    h.advance_bars(2)
    assert h.venue.fetch_order(SYMBOL, order_id=o.id).status == CLOSED
    bal = h.venue.fetch_balance()
    assert bal["BTC"].free == pytest.approx(BALANCES["BTC"] - 0.02) and bal["BTC"].locked == 0.0
    assert bal["USDT"].free == pytest.approx(BALANCES["USDT"] + 0.02 * price * (1 - FEE))


def test_partial_fills_then_complete(h: Harness) -> None:
    row = h.next_row()
    price = _tick_up(max(h.candles.low.iloc[row], h.candles.low.iloc[row + 1]) + 1.0)
    h.set_fill_policy(FillPolicy(max_fill_fraction=0.5))
    o = h.venue.create_order(limit("buy", 0.01, price, "partial"))
    h.advance_bars(2)  # the next bar has closed: half filled
    mid = h.venue.fetch_order(SYMBOL, order_id=o.id)
    assert (mid.status, mid.filled, mid.remaining) == (OPEN, 0.005, pytest.approx(0.005))
    assert [x.id for x in h.venue.fetch_open_orders(SYMBOL)] == [o.id]
    h.advance_bars(1)
    done = h.venue.fetch_order(SYMBOL, order_id=o.id)
    assert (done.status, done.filled) == (CLOSED, 0.01)
    assert [t.amount for t in h.venue.fetch_trades(SYMBOL)] == [0.005, 0.005]
    bar_ts = int(h.candles.ts.iloc[row])
    assert [t.ts_ms >= bar_ts for t in h.venue.fetch_trades(SYMBOL, since_ms=bar_ts)] == [True, True]
    assert len(h.venue.fetch_trades(SYMBOL, since_ms=bar_ts, limit=1)) == 1
    assert h.venue.fetch_trades(SYMBOL, since_ms=bar_ts + 2 * FIVE_MIN_MS) == []


def test_cancel_after_fill_returns_the_filled_order(h: Harness) -> None:
    price = _tick_up(h.candles.low.iloc[h.next_row()] + 1.0)
    o = h.venue.create_order(limit("buy", 0.001, price, "filled-then-cancel"))
    h.advance_bars(2)
    c = h.venue.cancel_order(SYMBOL, order_id=o.id)
    assert (c.status, c.filled) == (CLOSED, 0.001)


def test_market_sell_fills_at_once_at_the_last_price_with_the_taker_fee(h: Harness) -> None:
    last = float(h.candles.open.iloc[h.row_at(h.now_ms())])  # the open bar's price so far
    o = h.venue.create_order(OrderRequest(SYMBOL, "sell", "market", 0.01, client_order_id("mkt-sell")))
    assert (o.status, o.filled, o.average) == (CLOSED, 0.01, pytest.approx(last))
    [t] = h.venue.fetch_trades(SYMBOL)
    assert (t.is_maker, t.fee_asset, t.fee_cost) == (False, "USDT", pytest.approx(0.01 * last * FEE))


def test_market_buy(h: Harness) -> None:
    o = h.venue.create_order(OrderRequest(SYMBOL, "buy", "market", 0.01, client_order_id("mkt-buy")))
    assert o.status == CLOSED
    # Bitget sizes market buys in quote: the base amount may come out one lot lower.
    assert 0.01 - 0.00001 - 1e-12 <= o.filled <= 0.01
    assert h.venue.fetch_balance()["BTC"].free == pytest.approx(BALANCES["BTC"] + o.filled * (1 - FEE))


def test_unknown_orders_raise_order_not_found(h: Harness) -> None:
    with pytest.raises(OrderNotFoundError):
        h.venue.fetch_order(SYMBOL, client_order_id=client_order_id("never-sent"))
    with pytest.raises(OrderNotFoundError):
        h.venue.cancel_order(SYMBOL, order_id="987654")


def test_below_min_notional_is_refused_before_sending(h: Harness) -> None:
    with pytest.raises(InvalidOrderError, match="minimum notional|min notional") as e:
        h.venue.create_order(limit("buy", 0.0001, 20_000.0, "too-small"))  # 2 USDT < 5 USDT
    assert "worth" in (e.value.fix or "")
    assert h.requests("POST", "order") == 0


def test_insufficient_balance(h: Harness) -> None:
    price = _tick_up(h.candles.close.iloc[399] * 0.9)
    with pytest.raises(InsufficientFundsError, match="(?i)insufficient"):
        h.venue.create_order(limit("buy", 1.0, price, "too-big"))  # ~ 15-40k USDT > 10k
    assert h.venue.fetch_open_orders(SYMBOL) == []


def test_unknown_market(h: Harness) -> None:
    with pytest.raises((FatalExchangeError, InvalidOrderError), match="DOGE/USDT"):
        h.venue.create_order(OrderRequest("DOGE/USDT", "buy", "limit", 10, client_order_id("doge"), 0.1))


def test_only_spot_endpoints_are_called(h: Harness) -> None:
    """ccxt is configured for spot: no futures, margin-trading or currency-list endpoints."""
    h.venue.load_markets()
    h.venue.fetch_balance()
    o = h.venue.create_order(limit("buy", 0.001, 10_000.0, "spot-only"))
    h.venue.cancel_order(SYMBOL, order_id=o.id)
    paths = {r.path for r in h.server.state.requests}
    assert paths and not [
        p
        for p in paths
        if p.startswith(("/fapi", "/dapi", "/sapi", "/api/v2/mix", "/api/v3/account/settings"))
    ]
    assert "/api/v2/spot/public/coins" not in paths
