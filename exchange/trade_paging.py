"""How the venues' "my trades" endpoints must be walked so that no trade is skipped.

One `since` query is not enough after a long stop: Binance answers at most 24 h and 1000 trades per
request, Bitget 100 fills newest first. The walks below cover `[since_ms, until_ms]` in windows the
venue accepts and page each window by trade id. They are generators in the style of
`exchange.ccxt_flows` (they yield the adapter's steps), taking the one request they repeat as `query`.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

Query = Callable[[int | None, int, dict[str, Any]], Generator[Any, Any, Any]]  # (startTime, limit, params)


@dataclass(frozen=True)
class TradeQuery:
    """How a venue's "my trades" endpoint must be queried so that no trade is skipped."""

    window_ms: int  # widest endTime - startTime the venue accepts (or that we choose to ask)
    page: int  # the venue's maximum page size
    forward: bool  # True: pages go forward by trade id (fromId); False: newest first, back by id


# Binance GET /api/v3/myTrades (rest-api.md, "Account trade list"): "The time between startTime and
# endTime can't be longer than 24 hours" (else -1127); limit "Default: 500; Maximum: 1000"; "If fromId
# is set, it will get trades >= that fromId" (fromId cannot be combined with startTime/endTime).
# Bitget GET /api/v2/spot/trade/fills (api-doc/spot/trade/Get-Fills): "The interval between startTime
# and endTime must not exceed 90 days"; limit "Default: 100, max 100"; newest first, "idLessThan:
# Requests the content on the page before this ID (older data)". A window has to be read whole
# (newest first) before its oldest trades are known, so one day per window keeps that walk short and
# lets the sync save progress day by day; a 90-day outage costs 90 requests.
TRADE_QUERIES = {
    "binance": TradeQuery(window_ms=24 * 3_600_000, page=1000, forward=True),
    "bitget": TradeQuery(window_ms=24 * 3_600_000, page=100, forward=False),
}

Trades = dict[str, dict[str, Any]]  # ccxt trade dicts by trade id (pages overlap; ids deduplicate)


def trades_by_id_forward(query: Query, rules: TradeQuery, since_ms: int, until_ms: int, want: int
                         ) -> Generator[Any, Any, Trades]:
    """Binance: 24 h windows (startTime + endTime) up to the first trade, then `fromId` pages
    (trades >= that id, oldest first; no time bound, so nothing past a window is skipped)."""
    found: Trades = {}
    start = since_ms
    while start <= until_ms:
        end = min(start + rules.window_ms - 1, until_ms)
        page = yield from query(start, rules.page, {"until": end})
        found.update((str(t["id"]), t) for t in page)
        if page:
            break
        start = end + 1
    else:
        return found
    while len(page) == rules.page or end < until_ms:
        if len(found) >= want or any(int(t["timestamp"]) > until_ms for t in page):
            break
        next_id = max(int(t["id"]) for t in found.values()) + 1
        page = yield from query(None, rules.page, {"fromId": next_id})
        found.update((str(t["id"]), t) for t in page)
        end = until_ms  # fromId pages reach the present: only a full page means there is more
    return found


def trades_by_window_backward(query: Query, rules: TradeQuery, since_ms: int, until_ms: int, want: int
                              ) -> Generator[Any, Any, Trades]:
    """Bitget: windows (startTime + endTime) from the oldest on; within one, newest first, walked
    back with `idLessThan` until a short page. Stops after the window that reaches `want`."""
    found: Trades = {}
    start = since_ms
    while start <= until_ms and len(found) < want:
        end = min(start + rules.window_ms - 1, until_ms)
        params: dict[str, Any] = {"until": end}
        while True:
            page = yield from query(start, rules.page, dict(params))
            found.update((str(t["id"]), t) for t in page)
            if len(page) < rules.page:
                break
            params["idLessThan"] = min(int(t["id"]) for t in page)
        start = end + 1
    return found
