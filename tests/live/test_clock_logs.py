"""The injectable clocks, the crash hook's parsing, and JSON logs."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import threading

from live.clock import DrivingClock, FollowingClock, WallClock, floor_to_bar
from live.logs import log_event, setup_logging


class _Virtual:
    def __init__(self, t):
        self.t = t

    def now_ms(self):
        return self.t

    def set(self, ms):
        self.t = ms
        return ms


def test_driving_clock_moves_virtual_time_forward_only():
    v = _Virtual(1_000)
    c = DrivingClock(v)
    stop = threading.Event()
    assert c.sleep_until(5_000, stop) and v.t == 5_000
    assert c.sleep_until(2_000, stop) and v.t == 5_000
    stop.set()
    assert not c.sleep_until(9_000, stop) and v.t == 5_000


def test_following_clock_polls_until_reached_or_stopped():
    ticks = iter(range(0, 10_000, 100))
    c = FollowingClock(lambda: next(ticks), poll_s=0)
    assert c.sleep_until(500, threading.Event())
    stop = threading.Event()
    stop.set()
    assert not FollowingClock(lambda: 0).sleep_until(1, stop)


def test_wall_clock_sleep_is_interruptible():
    stop = threading.Event()
    threading.Timer(0.05, stop.set).start()
    c = WallClock()
    assert not c.sleep_until(c.now_ms() + 60_000, stop)
    assert floor_to_bar(1_234_567, 300_000) == 1_200_000


def test_json_logs_carry_event_and_fields():
    buf = io.StringIO()
    logger, root = logging.getLogger("aiotrade.live"), logging.getLogger()
    before = (list(logger.handlers), logger.level, logger.propagate, list(root.handlers))
    try:
        setup_logging(json_logs=True, stream=buf)
        log_event(logging.INFO, "order_sent", "sent buy", pair="BTC/USDT", client_id="abc")
    finally:  # setup_logging also puts a handler on the root logger: later tests must not write to buf
        logger.handlers[:], logger.level, logger.propagate, root.handlers[:] = before
    doc = json.loads(buf.getvalue().strip())
    assert doc["event"] == "order_sent" and doc["pair"] == "BTC/USDT" and doc["msg"] == "sent buy"


def test_crash_point_kills_on_the_nth_hit_only():
    code = (
        "from live.crash import crash_point\n"
        "crash_point('after_intent'); print('one', flush=True)\n"
        "crash_point('after_answer'); print('two', flush=True)\n"
        "crash_point('after_intent'); print('three', flush=True)\n"
    )
    env = {"AIOTRADE_CRASH_AT": "after_intent:2", "PATH": ""}
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=".")
    assert p.returncode == -9 and p.stdout.split() == ["one", "two"]
