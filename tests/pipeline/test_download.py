"""`aiotrade download` against the loopback emulator with real ccxt clients: exact candles for both
venues, the still-open candle dropped, resume after a SIGKILL, retries, gaps, and bad input."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from core.errors import RetryableExchangeError
from core.store import CandleStore
from exchange.ccxt_client import make_exchange
from exchange.emulator import EmulatorServer, EmulatorState, Request, Response, VirtualClock
from pipeline.download import Downloader, RetryPolicy, run_download
from tests.exchange.candle_fixtures import sample_5m, shared_1m

MIN = 60_000
PAGE = {"binance": 1000, "bitget": 200}


def _is_candles(req: Request) -> bool:
    return req.path in (
        "/api/v3/klines",
        "/api/v2/spot/market/candles",
        "/api/v2/spot/market/history-candles",
    )


@pytest.fixture(params=["shared-1m", "sample-5m"])
def candles(request: pytest.FixtureRequest) -> tuple[str, pd.DataFrame]:
    """(timeframe, candles): 3,500 real 1m candles from ../shared, or 2,600 of the bundled 5m."""
    if request.param == "shared-1m":
        return "1m", shared_1m(request.getfixturevalue("shared_ohlcv"), 3500)
    return "5m", sample_5m().iloc[:2600].reset_index(drop=True)


def _server(tf: str, df: pd.DataFrame, now_ms: int) -> EmulatorServer:
    state = EmulatorState.from_frames({("BTC/USDT", tf): df}, clock=VirtualClock(now_ms, speed=0))
    return EmulatorServer(state).start()


@pytest.fixture()
def emu_1m(shared_ohlcv: Path) -> Iterator[tuple[EmulatorServer, pd.DataFrame]]:
    df = shared_1m(shared_ohlcv, 2500)  # binance: 3 pages, bitget: 13
    server = _server("1m", df, int(df.ts.iloc[-1]) + MIN)
    yield server, df
    server.stop()


@pytest.mark.parametrize("exchange", ["binance", "bitget"])
def test_download_stores_exactly_the_emulator_candles_and_drops_the_open_one(
    tmp_path: Path, exchange: str, candles: tuple[str, pd.DataFrame]
) -> None:
    tf, df = candles
    # 30 s into the last candle: it is served (partial) and must not be stored.
    with _server(tf, df, int(df.ts.iloc[-1]) + 30_000) as emu:
        (res,) = run_download(
            exchange,
            ["BTC/USDT"],
            [tf],
            int(df.ts.iloc[0]),
            None,
            str(tmp_path),
            base_url=emu.url,
            rate_limit=False,
        )
        pages = [r for r in emu.state.requests if _is_candles(r)]
    stored = CandleStore(tmp_path).load(exchange, "BTC/USDT", tf)
    pd.testing.assert_frame_equal(stored, df.iloc[:-1].reset_index(drop=True))
    assert len(pages) == res.pages >= 3 and res.added == len(df) - 1
    assert all(int(r.query["limit"]) == PAGE[exchange] for r in pages)


@pytest.mark.parametrize("exchange", ["binance", "bitget"])
def test_killed_mid_download_then_rerun_resumes_and_completes(
    tmp_path: Path, exchange: str, emu_1m: tuple[EmulatorServer, pd.DataFrame]
) -> None:
    emu, df = emu_1m
    pages_before_kill = 2
    served, blocked, release = [0], threading.Event(), threading.Event()

    def stall_after_pages(req: Request, call_next):
        if _is_candles(req):
            served[0] += 1
            if served[0] > pages_before_kill:
                blocked.set()
                release.wait(30)
        return call_next(req)

    emu.router.use(stall_after_pages)
    cmd = [
        sys.executable, "-m", "pipeline.cli.main", "download", "--exchange", exchange, "--pairs", "BTC/USDT",
        "--timeframes", "1m", "--since", str(int(df.ts.iloc[0])), "--base-url", emu.url, "--store", str(tmp_path / "s"),
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert blocked.wait(60), proc.communicate(timeout=5)
        os.kill(proc.pid, signal.SIGKILL)  # while page 3 is in flight
        proc.wait(10)
    finally:
        release.set()
        emu.router.remove(stall_after_pages)
    store = CandleStore(tmp_path / "s")
    partial = store.load(exchange, "BTC/USDT", "1m")  # loads = valid (validated on every load)
    pd.testing.assert_frame_equal(
        partial, df.iloc[: pages_before_kill * PAGE[exchange]].reset_index(drop=True)
    )

    emu.state.requests.clear()
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "resumed after" in done.stdout
    first = next(r for r in emu.state.requests if _is_candles(r))
    resumed_from = int(partial.ts.iloc[-1]) + MIN
    if exchange == "binance":
        assert int(first.query["startTime"]) == resumed_from
    else:  # Bitget pages are aligned on endTime = since + limit * tf
        assert int(first.query["endTime"]) == resumed_from + PAGE["bitget"] * MIN
    pd.testing.assert_frame_equal(store.load(exchange, "BTC/USDT", "1m"), df)


def test_incremental_run_fetches_only_the_new_candles(tmp_path: Path) -> None:
    df = sample_5m().iloc[:1500].reset_index(drop=True)
    with _server("5m", df, int(df.ts.iloc[999]) + 300_000) as emu:
        first = run_download(
            "binance",
            ["BTC/USDT"],
            ["5m"],
            int(df.ts.iloc[0]),
            None,
            str(tmp_path),
            base_url=emu.url,
            rate_limit=False,
        )
        emu.state.clock.set(int(df.ts.iloc[-1]) + 300_000)
        emu.state.requests.clear()
        second = run_download(
            "binance",
            ["BTC/USDT"],
            ["5m"],
            int(df.ts.iloc[0]),
            None,
            str(tmp_path),
            base_url=emu.url,
            rate_limit=False,
        )
        klines = [r for r in emu.state.requests if _is_candles(r)]
    assert first[0].added == 1000 and second[0].added == 500 and second[0].resumed_after_ms == df.ts.iloc[999]
    assert len(klines) == 1 and int(klines[0].query["startTime"]) == df.ts.iloc[1000]
    pd.testing.assert_frame_equal(CandleStore(tmp_path).load("binance", "BTC/USDT", "5m"), df)


@pytest.mark.parametrize("exchange", ["binance", "bitget"])
def test_gaps_longer_than_a_page_are_crossed(tmp_path: Path, exchange: str) -> None:
    full = sample_5m().iloc[:3000]
    df = pd.concat([full.iloc[:300], full.iloc[1700:]]).reset_index(drop=True)  # 1,400 candles missing
    with _server("5m", df, int(df.ts.iloc[-1]) + 300_000) as emu:
        run_download(
            exchange,
            ["BTC/USDT"],
            ["5m"],
            int(df.ts.iloc[0]),
            None,
            str(tmp_path),
            base_url=emu.url,
            rate_limit=False,
        )
    pd.testing.assert_frame_equal(CandleStore(tmp_path).load(exchange, "BTC/USDT", "5m"), df)


def _flaky(failures: int, status: int, headers: dict[str, str] | None = None):
    left = [failures]

    def mw(req: Request, call_next):
        if _is_candles(req) and left[0] > 0:
            left[0] -= 1
            return Response(
                status,
                "<html>unavailable</html>" if status >= 500 else {"code": -1003, "msg": "Too many requests."},
                headers or {},
            )
        return call_next(req)

    return mw


def test_retryable_errors_back_off_with_jitter_then_succeed(tmp_path: Path) -> None:
    df = sample_5m().iloc[:400].reset_index(drop=True)
    with _server("5m", df, int(df.ts.iloc[-1]) + 300_000) as emu:
        emu.router.use(_flaky(2, 503))
        emu.router.use(_flaky(1, 429, {"Retry-After": "3"}))
        sleeps: list[float] = []
        client = make_exchange("binance", base_url=emu.url, rate_limit=False)
        dl = Downloader(client, "binance", CandleStore(tmp_path), sleep=sleeps.append, rng=random.Random(1))
        dl.load_markets()
        res = dl.download("BTC/USDT", "5m", int(df.ts.iloc[0]), None, dl.server_now_ms())
    # Two 503s (outer middleware) then the 429: back-off 0.5 s, 1 s, 2 s, each half fixed and half
    # random, and the third lifted to the server's Retry-After.
    assert (
        len(sleeps) == 3
        and 0.25 <= sleeps[0] <= 0.5
        and 0.5 <= sleeps[1] <= 1.0
        and sleeps[0] * 2 != sleeps[1]
    )
    assert sleeps[2] == 3.0
    assert res.added == 400


def test_gives_up_after_the_attempts_and_writes_nothing(tmp_path: Path) -> None:
    df = sample_5m().iloc[:400].reset_index(drop=True)
    with _server("5m", df, int(df.ts.iloc[-1]) + 300_000) as emu:
        emu.router.use(_flaky(99, 502))
        client = make_exchange("binance", base_url=emu.url, rate_limit=False)
        dl = Downloader(
            client, "binance", CandleStore(tmp_path), policy=RetryPolicy(attempts=3), sleep=lambda s: None
        )
        dl.load_markets()
        with pytest.raises(RetryableExchangeError, match="gave up after 3 attempts"):
            dl.download("BTC/USDT", "5m", int(df.ts.iloc[0]), None, dl.server_now_ms())
    assert not list(tmp_path.rglob("*.parquet"))


def _cli(
    capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *args: str
) -> tuple[int, str]:
    from pipeline.cli.main import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["aiotrade", "download", "--store", str(tmp_path / "s"), *args])
    with pytest.raises(SystemExit) as e:
        main()
    out = capsys.readouterr()
    return int(e.value.code or 0), out.out + out.err


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--exchange", "kraken"], "unknown exchange 'kraken'"),
        (["--exchange", "binanse"], "did you mean binance"),
        (["--exchange", "binance", "--pairs", "BTC/USDX"], "did you mean BTC/USDT"),
        (["--exchange", "bitget", "--pairs", "ETH/USDT,DOGE/USDT"], "lists no spot pair 'ETH/USDT'"),
        (["--exchange", "binance", "--timeframes", "1m,7m"], "no timeframe '7m'"),
        (["--exchange", "bitget", "--timeframes", "2h"], "bitget has no timeframe '2h'"),
        (["--exchange", "binance", "--since", "yesterday"], "--since 'yesterday' is not a date"),
        (
            ["--exchange", "binance", "--since", "2023-02-01", "--until", "2023-01-01"],
            "--until must be after --since",
        ),
    ],
)
def test_bad_input_gives_one_clear_message_and_writes_nothing(
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    expected: str,
) -> None:
    df = sample_5m().iloc[:100].reset_index(drop=True)
    with _server("5m", df, int(df.ts.iloc[-1]) + 300_000) as emu:
        base = ["--pairs", "BTC/USDT", "--timeframes", "5m", "--since", "2023-01-01", "--base-url", emu.url]
        code, text = _cli(capsys, monkeypatch, tmp_path, *base, *args)
    assert code == 2 and expected in text and "Traceback" not in text and "fix:" in text
    assert not (tmp_path / "s").exists() or not list((tmp_path / "s").rglob("*.parquet"))


def test_unreachable_exchange_is_one_clear_message(tmp_path: Path, capsys, monkeypatch) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr("pipeline.download.RetryPolicy", lambda: RetryPolicy(attempts=2, base_delay_s=0.01))
    code, text = _cli(capsys, monkeypatch, tmp_path, "--exchange", "binance", "--pairs", "BTC/USDT", "--timeframes", "5m",
                      "--since", "2023-01-01", "--base-url", f"http://127.0.0.1:{port}")  # fmt: skip
    assert (
        code == 2
        and "cannot reach binance" in text
        and "gave up after 2 attempts" in text
        and "Traceback" not in text
    )
