"""`aiotrade download`: closed candles from Binance or Bitget (or the emulator) into the candle store.

- Paginated: `fetch_ohlcv(since, limit)` pages of the venue's reliable size (Binance 1000, Bitget
  200), the cursor moving to the candle after the last one received.
- Incremental: each dataset resumes after its newest stored candle (`CandleStore.last_ts`).
- Closed candles only: the exchange's own clock (`fetch_time`, taken once per run) decides; a
  candle still open at that time is dropped and fetched by a later run.
- Each page is written to the store at once (atomic merge), so a kill loses at most the page in
  flight and the next run resumes after the last page written.
- Retryable errors (network, timeout, 5xx, 429/418, clock skew) are retried with exponential
  back-off and jitter, honouring the server's Retry-After; ccxt's own limiter keeps the request
  pace under the exchange's rate limit. Anything else stops with one clear message.
"""

from __future__ import annotations

import difflib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, Protocol, TypeVar

import pandas as pd

from core.candles import COLUMNS, OffGrid
from core.errors import ConfigError, RetryableExchangeError
from core.store import CandleStore, pair_dir
from core.timeframes import SUPPORTED_TIMEFRAMES, timeframe_ms
from exchange.ccxt_client import Venue, make_exchange, translate_errors, venue

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0

    def delay_s(self, attempt: int, rng: random.Random, retry_after_s: float | None = None) -> float:
        """Exponential back-off with 'equal jitter' (half fixed, half random); never under Retry-After."""
        backoff = min(self.max_delay_s, self.base_delay_s * 2**attempt)
        return max(backoff / 2 + rng.uniform(0, backoff / 2), retry_after_s or 0.0)


class Progress(Protocol):
    def begin(self, key: str, total: int) -> None: ...
    def advance(self, key: str, done: int) -> None: ...


class _NoProgress:
    def begin(self, key: str, total: int) -> None:
        pass

    def advance(self, key: str, done: int) -> None:
        pass


@dataclass(frozen=True)
class DatasetResult:
    pair: str
    timeframe: str
    resumed_after_ms: int | None  # newest candle stored before this run, if any
    start_ms: int
    stop_ms: int  # candles with start_ms <= ts < stop_ms were wanted
    pages: int
    added: int
    last_ts: int | None  # newest candle stored after this run


def parse_time_ms(text: str, what: str = "time") -> int:
    """ISO date or datetime ('2024-01-01', '2024-01-01T12:00', with Z or +00:00; naive = UTC) or epoch ms."""
    raw = text.strip()
    if raw.isdigit():
        return int(raw)
    try:
        dt = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"{what} {text!r} is not a date",
            "write it as ISO 8601 (2024-01-01 or 2024-01-01T12:00Z) or epoch ms",
        ) from None
    return int((dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp() * 1000)


def check_timeframes(v: Venue, timeframes: list[str]) -> None:
    """All unknown timeframes in one ConfigError, with close matches among those the venue serves."""
    allowed = [tf for tf in SUPPORTED_TIMEFRAMES if tf in v.ohlcv_timeframes]
    bad = [tf for tf in timeframes if tf not in allowed]
    if bad:
        hints = [_hint(tf, allowed) for tf in bad]
        raise ConfigError(
            f"{v.name} has no timeframe {', '.join(h for h in hints)}",
            f"use one of: {', '.join(allowed)}",
        )


def check_pairs(exchange: str, markets: dict[str, Any], pairs: list[str]) -> None:
    """All unknown pairs in one ConfigError, with close matches among the exchange's spot markets."""
    spot = sorted(s for s, m in markets.items() if m.get("spot", True) and ":" not in s)
    bad = [p for p in pairs if p not in spot]
    if bad:
        hints = [_hint(p, spot) for p in bad]
        raise ConfigError(
            f"{exchange} lists no spot pair {', '.join(hints)}",
            f"check the spelling (BASE/QUOTE); {len(spot)} spot pairs are listed, e.g. {', '.join(spot[:5])}",
        )


def _hint(bad: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(bad, choices, n=3, cutoff=0.5)
    return f"{bad!r} (did you mean {', '.join(close)}?)" if close else repr(bad)


class Downloader:
    """One exchange client, one store; `download()` fetches one dataset."""

    def __init__(
        self,
        client: Any,
        exchange: str,
        store: CandleStore,
        *,
        policy: RetryPolicy | None = None,
        progress: Progress | None = None,
        off_grid: OffGrid = "floor",
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        on_retry: Callable[[str, Exception, float], None] | None = None,
    ) -> None:
        self.client = client
        self.exchange = exchange
        self.venue = venue(exchange)
        self.store = store
        self.policy = policy or RetryPolicy()
        self.progress = progress or _NoProgress()
        self.off_grid = off_grid
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.on_retry = on_retry

    def call(self, action: str, fn: Callable[[], T]) -> T:
        """`fn()` with our error mapping and retries on retryable errors."""
        for attempt in range(self.policy.attempts):
            try:
                with translate_errors(self.exchange, action, self.client):
                    return fn()
            except RetryableExchangeError as e:
                if attempt == self.policy.attempts - 1:
                    raise RetryableExchangeError(
                        f"{e.problem} (gave up after {self.policy.attempts} attempts)", e.fix, e.retry_after_s
                    ) from e
                delay = self.policy.delay_s(attempt, self.rng, e.retry_after_s)
                if self.on_retry:
                    self.on_retry(action, e, delay)
                self.sleep(delay)
        raise AssertionError("unreachable")

    def load_markets(self) -> dict[str, Any]:
        return self.call("loading markets", lambda: self.client.load_markets())

    def server_now_ms(self) -> int:
        now = self.call("reading the server time", lambda: self.client.fetch_time())
        return int(now) if now else int(self.client.milliseconds())

    def download(
        self, pair: str, tf: str, since_ms: int | None, until_ms: int | None, now_ms: int
    ) -> DatasetResult:
        tf_ms = timeframe_ms(tf)
        last = self.store.last_ts(self.exchange, pair, tf)
        if last is None and since_ms is None:
            raise ConfigError(
                f"nothing stored for {self.exchange} {pair} {tf} and no start given",
                "pass --since (e.g. 2024-01-01)",
            )
        start = last + tf_ms if last is not None else since_ms
        if since_ms is not None and last is not None:
            start = max(since_ms, last + tf_ms)
        assert start is not None
        # A candle is closed when ts + tf_ms <= now: later ones are still open (or in the future).
        stop = min(until_ms if until_ms is not None else now_ms, now_ms - tf_ms + 1)
        key = f"{pair} {tf}"
        self.progress.begin(key, max(0, -(-(stop - start) // tf_ms)))
        cursor, pages, added = start, 0, 0
        limit = self.venue.ohlcv_page_limit
        while cursor < stop:
            rows = self.call(
                f"fetching {pair} {tf} candles", partial(self.client.fetch_ohlcv, pair, tf, cursor, limit)
            )
            pages += 1
            page = _frame([r for r in rows or [] if cursor <= r[0] < stop])
            if len(page):
                added += self.store.write(self.exchange, pair, tf, page, off_grid=self.off_grid).added
                cursor = int(page["ts"].iloc[-1]) + tf_ms
            elif self.venue.ohlcv_pages_skip_gaps or rows:
                break  # nothing at or after the cursor before the stop (or only later candles)
            else:
                cursor += limit * tf_ms  # a time-window page that fell into a gap: try the next window
            self.progress.advance(key, max(0, min(cursor, stop) - start) // tf_ms)
        self.progress.advance(key, max(0, -(-(stop - start) // tf_ms)))  # done, even if data began late
        return DatasetResult(
            pair, tf, last, start, stop, pages, added, self.store.last_ts(self.exchange, pair, tf)
        )


def _frame(rows: list[list[Any]]) -> pd.DataFrame:
    df = pd.DataFrame([r[:6] for r in rows], columns=list(COLUMNS))
    df = df.astype({"ts": "int64", **{c: "float64" for c in COLUMNS[1:]}})
    return df.sort_values("ts").drop_duplicates("ts", keep="last").reset_index(drop=True)


def run_download(
    exchange: str,
    pairs: list[str],
    timeframes: list[str],
    since_ms: int | None,
    until_ms: int | None,
    store_root: str,
    *,
    base_url: str | None = None,
    timeout_s: float = 10.0,
    rate_limit: bool = True,
    off_grid: OffGrid = "floor",
    progress: Progress | None = None,
    policy: RetryPolicy | None = None,
) -> list[DatasetResult]:
    """Validate everything first (exchange, timeframes, pairs, dates), then fetch dataset by dataset."""
    v = venue(exchange)
    check_timeframes(v, timeframes)
    for p in pairs:
        pair_dir(p)
    if since_ms is not None and until_ms is not None and until_ms <= since_ms:
        raise ConfigError("--until must be after --since", "swap the dates or drop --until")
    client = make_exchange(exchange, base_url=base_url, timeout_s=timeout_s, rate_limit=rate_limit)
    dl = Downloader(
        client, exchange, CandleStore(store_root), policy=policy, progress=progress, off_grid=off_grid
    )
    check_pairs(exchange, dl.load_markets(), pairs)
    now = dl.server_now_ms()
    return [dl.download(p, tf, since_ms, until_ms, now) for p in pairs for tf in timeframes]
