"""A replay predicts once on made-up candles before its clock runs, so the first bar does not pay the
feature kernels' compile time; and signed requests follow the virtual clock however long a bar takes."""

from __future__ import annotations

import numpy as np

from live import replay

from . import bundles

BAR_MS = 300_000
START = 1_672_531_200_000 + 10 * 86_400_000


def test_the_warm_up_window_is_one_a_real_bundle_predicts_on(monkeypatch):
    b = bundles.bundle(bundles.mixed_policy())
    failures: list[str] = []
    monkeypatch.setattr(replay.log, "debug", lambda msg, *a: failures.append(msg % a))
    seen: list[tuple[np.ndarray, np.ndarray]] = []
    real = b.predict
    monkeypatch.setattr(b, "predict", lambda pair, w: (seen.append(w), real(pair, w))[1])
    replay.compile_first_prediction(b, BAR_MS, START)
    assert failures == [], failures  # the made-up candles make a full feature row for this bundle
    (ts, ohlcv), = seen
    assert len(ts) == b.warmup_bars + 8 and ts[-1] == START - BAR_MS and np.all(np.diff(ts) == BAR_MS)
    assert ohlcv.shape == (len(ts), 5) and np.all(ohlcv[:, 1] >= ohlcv[:, 3]) and np.all(ohlcv[:, 2] <= ohlcv[:, 3])


def test_a_policy_that_cannot_predict_only_logs_at_the_warm_up(monkeypatch):
    class Broken:
        warmup_bars = 10

        def predict(self, pair, window):
            raise ValueError("no")

    logged: list[str] = []
    monkeypatch.setattr(replay.log, "debug", lambda msg, *a: logged.append(msg % a))
    replay.compile_first_prediction(Broken(), BAR_MS, START)  # type: ignore[arg-type]
    assert logged == ["warm-up prediction failed: ValueError('no')"]


def test_a_long_bar_does_not_put_signed_requests_ahead_of_the_virtual_clock(replay_env, caplog):
    """The virtual clock stands still within a bar; wall time does not. Signed requests follow the
    virtual clock, so a bar that takes longer than Binance's 1 s 'ahead' allowance (a first bar compiling
    kernels on a fresh machine) is not rejected and resynced."""
    import logging
    import time

    caplog.set_level(logging.WARNING)
    replay_env.venue.load_markets()
    replay_env.venue.fetch_balance()  # signed
    time.sleep(1.6)  # the virtual clock does not move
    balances = replay_env.venue.fetch_balance()
    assert balances["USDT"].free > 0
    assert not [r for r in caplog.records if "request time rejected" in r.getMessage()]
    rejected = [r for r in replay_env.state.requests if r.status >= 400]
    assert rejected == [], rejected
