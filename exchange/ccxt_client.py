"""ccxt clients for Binance and Bitget spot, and the mapping of ccxt errors to ours.

`make_exchange` builds a sync or `ccxt.async_support` client with options that keep it on spot:
no futures, margin or currency endpoints are called (see ../shared/EXCHANGE-NOTES.md). With
`base_url` every REST endpoint is rewritten to that host (the loopback emulator). Venue quirks live
in `VENUES` as data; nothing outside this package branches on the exchange name.

`translate_errors(exchange, action)` wraps any ccxt call and re-raises ccxt errors as
`core.errors`: RetryableExchangeError for transient trouble (network, timeout, 5xx, rate limits,
clock skew), the Fatal* family otherwise, each with a message that says what to do.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import ccxt

from core import errors
from exchange.http_session import ExchangeSession


@dataclass(frozen=True)
class Venue:
    """What differs between the exchanges, as data."""

    name: str
    options: dict[str, Any]
    has_overrides: dict[str, bool] = field(default_factory=dict)
    # Most candles one fetch_ohlcv call returns reliably. Bitget: ccxt sends old `since` requests to
    # history-candles (max 200) aligned on endTime = since + limit*tf, so a larger limit skips data.
    ohlcv_page_limit: int = 1000
    # True when a candle page starts at the first candle at/after `since` whatever the gap
    # (Binance), so an empty page means no more data; False when a page is a fixed time window
    # (Bitget aligns on endTime), where an empty page may just be a gap in the data.
    ohlcv_pages_skip_gaps: bool = True
    # Timeframes the venue's spot candle endpoint accepts (ccxt's `timeframes` lists more for Bitget).
    ohlcv_timeframes: tuple[str, ...] = ()
    # How base_url replaces ccxt's URLs: keep each URL's path (Binance), or the host only (Bitget's
    # URLs are host templates and the paths live in the API definitions).
    keep_url_path: bool = True


VENUES: dict[str, Venue] = {
    "binance": Venue(
        name="binance",
        options={
            "defaultType": "spot",
            "fetchMarkets": {"types": ["spot"]},
            "fetchCurrencies": False,
            "fetchMargins": False,
        },
        has_overrides={"fetchCurrencies": False},
        ohlcv_page_limit=1000,
        ohlcv_timeframes=(
            "1m",
            "3m",
            "5m",
            "15m",
            "30m",
            "1h",
            "2h",
            "4h",
            "6h",
            "8h",
            "12h",
            "1d",
            "3d",
            "1w",
            "1M",
        ),
        keep_url_path=True,
    ),
    "bitget": Venue(
        name="bitget",
        options={
            "defaultType": "spot",
            "fetchMarkets": {"types": ["spot"]},
            "fetchCurrencies": False,
            "fetchMargins": False,
            "uta": False,
        },
        has_overrides={"fetchCurrencies": False},
        ohlcv_page_limit=200,
        ohlcv_pages_skip_gaps=False,
        ohlcv_timeframes=("1m", "3m", "5m", "15m", "30m", "1h", "4h", "6h", "12h", "1d", "1w"),
        keep_url_path=False,
    ),
}
SUPPORTED_EXCHANGES = tuple(VENUES)


def venue(name: str) -> Venue:
    """The venue description, or a ConfigError naming the supported exchanges."""
    if name not in VENUES:
        close = difflib.get_close_matches(name.lower(), SUPPORTED_EXCHANGES, n=2, cutoff=0.4)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        raise errors.ConfigError(
            f"unknown exchange {name!r}",
            f"{hint}supported exchanges: {', '.join(SUPPORTED_EXCHANGES)}",
        )
    return VENUES[name]


def make_exchange(
    name: str,
    *,
    base_url: str | None = None,
    timeout_s: float = 10.0,
    rate_limit: bool = True,
    credentials: dict[str, str] | None = None,
    asynchronous: bool = False,
    options: dict[str, Any] | None = None,
) -> Any:
    """A ccxt client for spot trading on `name`; `credentials` has apiKey/secret (Bitget: password).

    `rate_limit=False` only for tests against the emulator; against a real exchange keep ccxt's
    limiter on. Async clients need `await ex.close()`.
    """
    v = venue(name)
    if asynchronous:
        import ccxt.async_support as module  # imported on demand: it costs ~0.7 s at start-up
    else:
        module = ccxt
    config: dict[str, Any] = {
        "enableRateLimit": rate_limit,
        "timeout": int(timeout_s * 1000),
        "options": {**v.options, **(options or {})},
    }
    config.update(credentials or {})
    if not asynchronous:
        config["session"] = ExchangeSession()  # requests without its per-call merging (see http_session)
    ex = getattr(module, name)(config)
    ex.has = {**ex.has, **v.has_overrides}
    if base_url:
        redirect(ex, base_url, keep_path=v.keep_url_path)
    return ex


def redirect(ex: Any, base_url: str, *, keep_path: bool) -> None:
    """Point every REST endpoint of `ex` at `base_url` (scheme://host:port)."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise errors.ConfigError(
            f"exchange base_url {base_url!r} is not an http(s) URL",
            "write it like http://127.0.0.1:8765 (the emulator prints its URL when it starts)",
        )
    root = f"{parts.scheme}://{parts.netloc}"
    api = ex.urls["api"]
    for key, url in list(api.items()):
        if isinstance(url, str):
            api[key] = root + urlsplit(url).path if keep_path else root


# ccxt class -> (our class, message template); the first match wins, so subclasses come first.
_RULES: list[tuple[type[Exception], type[errors.ExchangeError], str]] = [
    (ccxt.RateLimitExceeded, errors.RetryableExchangeError, "{ex} rate limit hit while {action}"),
    (
        ccxt.DDoSProtection,
        errors.RetryableExchangeError,
        "{ex} throttled the client (HTTP 429/418) while {action}",
    ),
    (
        ccxt.InvalidNonce,
        errors.RetryableExchangeError,
        "{ex} rejected the request time while {action} (clock skew)",
    ),
    (ccxt.RequestTimeout, errors.RetryableExchangeError, "{ex} did not answer in time while {action}"),
    (ccxt.OnMaintenance, errors.RetryableExchangeError, "{ex} is under maintenance ({action})"),
    (ccxt.ExchangeNotAvailable, errors.RetryableExchangeError, "{ex} is not available while {action}"),
    (ccxt.NetworkError, errors.RetryableExchangeError, "cannot reach {ex} while {action}"),
    # ccxt's OperationFailed family is the recoverable one (e.g. Binance -1001 "Internal error").
    (ccxt.OperationFailed, errors.RetryableExchangeError, "{ex} failed temporarily while {action}"),
    (ccxt.AuthenticationError, errors.AuthenticationError, "API key rejected by {ex} while {action}"),
    (ccxt.AccountSuspended, errors.AuthenticationError, "{ex} account suspended ({action})"),
    (ccxt.InsufficientFunds, errors.InsufficientFundsError, "{ex}: insufficient balance for {action}"),
    (ccxt.OrderNotFound, errors.OrderNotFoundError, "{ex} does not know the order ({action})"),
    (ccxt.InvalidOrder, errors.InvalidOrderError, "{ex} rejected the order ({action})"),
    (ccxt.BadSymbol, errors.FatalExchangeError, "{ex} does not list that market ({action})"),
    (ccxt.NotSupported, errors.FatalExchangeError, "{ex} does not support {action}"),
    (ccxt.BaseError, errors.FatalExchangeError, "{ex} refused {action}"),
]

_FIXES: dict[type[errors.ExchangeError], str] = {
    errors.RetryableExchangeError: "transient: it is retried automatically; if it persists, check the network, "
    "the exchange status page, or exchange.base_url in the config",
    errors.AuthenticationError: "check the API key, secret (and Bitget passphrase), their permissions and IP whitelist",
    errors.InsufficientFundsError: "deposit more, free balance locked in open orders, or lower the order size",
    errors.OrderNotFoundError: "the order was filled, cancelled or never placed; reconcile open orders",
    errors.InvalidOrderError: "check price and amount against the market's tick, lot and minimum notional",
    errors.FatalExchangeError: "check the request (pair, timeframe, parameters); retrying will not help",
}


def map_error(exc: Exception, exchange: str, action: str, client: Any = None) -> errors.ExchangeError:
    """Our error for a ccxt exception; `client` (the ccxt exchange) lets 429s carry Retry-After."""
    if (
        isinstance(exc, ccxt.BadRequest)
        and not isinstance(exc, ccxt.BadSymbol)
        and any(k in str(exc) for k in ("NOTIONAL", "MIN_NOTIONAL"))
    ):
        # Binance reports a min-notional breach as BadRequest (-1013), not InvalidOrder.
        return errors.InvalidOrderError(
            f"{exchange} rejected the order ({action}): value below the minimum notional: {_detail(exc)}",
            _FIXES[errors.InvalidOrderError],
        )
    for ccxt_cls, ours, template in _RULES:
        if isinstance(exc, ccxt_cls):
            problem = f"{template.format(ex=exchange, action=action)}: {_detail(exc)}"
            if ours is errors.RetryableExchangeError:
                return errors.RetryableExchangeError(problem, _FIXES[ours], _retry_after_s(client))
            return ours(problem, _FIXES[ours])
    return errors.FatalExchangeError(
        f"{exchange} failed {action}: {exc!r}", _FIXES[errors.FatalExchangeError]
    )


@contextmanager
def translate_errors(exchange: str, action: str, client: Any = None) -> Iterator[None]:
    """`with translate_errors("binance", "fetching candles"): ex.fetch_ohlcv(...)` (sync or async code)."""
    try:
        yield
    except ccxt.BaseError as e:
        raise map_error(e, exchange, action, client) from e


def _detail(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _retry_after_s(client: Any) -> float | None:
    headers = getattr(client, "last_response_headers", None) or {}
    for key, value in headers.items():
        if key.lower() == "retry-after":
            try:
                return max(0.0, float(value))
            except (TypeError, ValueError):
                return None
    return None
