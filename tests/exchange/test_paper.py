"""The paper venue beyond the contract: a restarted session continues where it stopped, and a
state file that does not fit is refused with a clear message (nothing overwritten)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import ConfigError
from exchange.ccxt_venue import CcxtVenue
from exchange.paper import PaperVenue
from exchange.port import CLOSED, OPEN, OrderRequest, client_order_id
from tests.exchange.candle_fixtures import sample_5m
from tests.exchange.contract.harness import FIVE_MIN_MS, SYMBOL, make_emulator


@pytest.fixture()
def emulator():
    server, _, _ = make_emulator(sample_5m("BTC/USDT").iloc[:800].reset_index(drop=True))
    yield server
    server.stop()


@pytest.mark.parametrize("source", ["binance", "bitget"])
def test_a_restarted_session_continues_where_it_stopped(emulator, tmp_path: Path, source: str) -> None:
    data = CcxtVenue.connect(source, base_url=emulator.url, rate_limit=False)
    path = tmp_path / "paper.db"
    paper = PaperVenue(data, path, balances={"USDT": 1000.0}, timeframe="5m")
    candles = sample_5m("BTC/USDT")
    next_row = int(candles.ts.searchsorted(emulator.state.now_ms())) + 0
    price = round(float(candles.low.iloc[next_row]) + 1.0, 2)
    req = OrderRequest(SYMBOL, "buy", "limit", 0.01, client_order_id("restart"), price)
    placed = paper.create_order(req)
    far = paper.create_order(OrderRequest(SYMBOL, "buy", "limit", 0.01, client_order_id("far"), 1000.0))
    assert placed.status == OPEN and paper.fetch_balance()["USDT"].locked == pytest.approx(
        0.01 * (price + 1000.0)
    )
    paper.close()  # the process stops; candles keep closing meanwhile
    emulator.state.clock.advance(2 * FIVE_MIN_MS)

    again = PaperVenue(data, path, balances={"USDT": 99.0}, timeframe="5m")  # the saved account wins
    done = again.fetch_order(SYMBOL, client_order_id=req.client_order_id)
    assert (done.id, done.status, done.filled, done.average) == (placed.id, CLOSED, 0.01, price)
    assert [o.id for o in again.fetch_open_orders(SYMBOL)] == [far.id]
    bal = again.fetch_balance()
    assert bal["USDT"].free == pytest.approx(1000.0 - 0.01 * price - 0.01 * 1000.0)
    assert bal["BTC"].free == pytest.approx(0.01 * 0.999)
    assert again.create_order(req).id == placed.id  # still idempotent after the restart
    new = again.create_order(OrderRequest(SYMBOL, "buy", "limit", 0.01, client_order_id("after"), 1000.0))
    assert int(new.id) == int(far.id) + 1  # ids continue, never reused
    again.close()
    data.close()


def test_a_state_file_of_another_venue_is_refused(emulator, tmp_path: Path) -> None:
    path = tmp_path / "paper.db"
    binance = CcxtVenue.connect("binance", base_url=emulator.url, rate_limit=False)
    PaperVenue(binance, path, balances={"USDT": 10.0}).close()
    bitget = CcxtVenue.connect("bitget", base_url=emulator.url, rate_limit=False)
    with pytest.raises(ConfigError, match="belongs to 'paper-binance'") as e:
        PaperVenue(bitget, path)
    assert "one paper state file per exchange" in (e.value.fix or "")


def test_a_corrupt_state_file_is_refused_and_left_alone(emulator, tmp_path: Path) -> None:
    path = tmp_path / "paper.db"
    path.write_bytes(b"this is not sqlite" * 100)
    data = CcxtVenue.connect("binance", base_url=emulator.url, rate_limit=False)
    with pytest.raises(ConfigError, match="not a usable SQLite file"):
        PaperVenue(data, path)
    assert path.read_bytes() == b"this is not sqlite" * 100
