"""`aiotrade live` logging: the runner's records and every other library's warnings in one format
(one JSON object per line with --json-logs), each written once."""

from __future__ import annotations

import io
import json
import logging

import pytest

from live.logs import HANDLER_NAME, LOGGER_NAME, log_event, setup_logging


@pytest.fixture()
def restored_logging():
    runner, root = logging.getLogger(LOGGER_NAME), logging.getLogger()
    before = (list(runner.handlers), runner.level, runner.propagate, list(root.handlers))
    yield
    runner.handlers[:], runner.level, runner.propagate = before[:3]
    root.handlers[:] = before[3]


def test_json_logs_hold_the_venue_adapters_warnings_too_once_each(restored_logging):
    buf = io.StringIO()
    setup_logging(json_logs=True, stream=buf)
    setup_logging(json_logs=True, stream=buf)  # idempotent: a second call replaces, never doubles
    log_event(logging.INFO, "order_sent", "sent buy", pair="BTC/USDT")
    logging.getLogger("aiotrade.exchange").warning("binance: request time rejected; resyncing the clock")
    logging.getLogger("aiotrade.exchange").info("below WARNING: not written")
    docs = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert [(d["logger"], d["event"], d["msg"]) for d in docs] == [
        ("aiotrade.live", "order_sent", "sent buy"),
        ("aiotrade.exchange", "log", "binance: request time rejected; resyncing the clock"),
    ]
    assert [h.get_name() for h in logging.getLogger().handlers].count(HANDLER_NAME) == 1


def test_text_logs_the_same_way(restored_logging):
    buf = io.StringIO()
    setup_logging(json_logs=False, stream=buf)
    logging.getLogger("core.candles").warning("floored 2 off-grid stamp(s)")
    log_event(logging.WARNING, "grid_below_fees", "a grid loses money per round trip", pair="BTC/USDT")
    lines = buf.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].endswith("WARNING floored 2 off-grid stamp(s)")
    assert lines[1].endswith("WARNING a grid loses money per round trip  pair=BTC/USDT")
