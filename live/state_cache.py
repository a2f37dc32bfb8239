"""What `live.state.StateStore` keeps in memory: the rows the cycle reads every bar.

Every bar the runner asks for a pair's active intents, its position, a few meta values and the fills
the engine has not absorbed yet; re-reading them from SQLite and rebuilding the records each time cost
more than the writes themselves. The DB stays the source of truth, and the cache never holds a row
the connection's view of the DB does not:

- It is filled from the DB on first use (start-up), and again after any `drop`.
- Every write the store makes updates it in the same code path, right after the statement that changed
  the row, inside that transaction. A rollback (any exception inside `StateStore.tx`, or a failed
  commit) drops the whole cache, so nothing the DB did not keep can be read back.
- A commit by any other connection (another process, a second store on the file) changes SQLite's
  `PRAGMA data_version`, which the store checks at the start of every transaction, under the writer
  lock (and a read-only store before every read): the cache is dropped and refilled from the DB. So
  every write decides on the DB's rows; the runner's reads between its transactions (at least two a
  bar) see what it wrote itself, the only writer it expects.

Only the store's own methods may write intents, meta and fills; raw SQL through `tx()` on those
tables would bypass the cache.
"""

from __future__ import annotations

from bisect import insort

from live.records import ACTIVE, Fill, Intent, Position


class StoreCache:
    def __init__(self) -> None:
        self.drop()

    def drop(self) -> None:
        # client id -> (seq, intent) of every ACTIVE intent; None until loaded from the DB.
        self.active: dict[str, tuple[int, Intent]] | None = None
        # meta key -> value as the DB holds it (None: no such key). Only keys read or written so far.
        self.meta: dict[str, str | None] = {}
        # The next intent seq (MAX(seq) + 1), so an insert needs no scan of the table; None until read.
        self.next_seq: int | None = None
        # pair -> its unapplied fills as (ts_ms, rowid, fill), in the DB's order; only pairs read so far.
        self.unapplied: dict[str, list[tuple[int, int, Fill]]] = {}
        # pair -> its position (the equity snapshot of every bar reads it).
        self.positions: dict[str, Position] = {}

    # ---- intents ------------------------------------------------------------------------------

    def put(self, seq: int, it: Intent) -> None:
        """The intent as just written: kept while active, forgotten once final."""
        assert self.active is not None
        if it.status in ACTIVE:
            self.active[it.client_id] = (seq, it)
        else:
            self.active.pop(it.client_id, None)

    def intents(self, pair: str | None, statuses: tuple[str, ...]) -> list[Intent]:
        assert self.active is not None
        hits = [(seq, it) for seq, it in self.active.values()
                if it.status in statuses and (pair is None or it.pair == pair)]
        hits.sort(key=lambda h: h[0])  # the DB's ORDER BY seq (seq is unique)
        return [it for _, it in hits]

    def by_venue_id(self, pair: str, venue_order_id: str) -> Intent | None:
        assert self.active is not None
        for _, it in self.active.values():
            if it.venue_order_id == venue_order_id and it.pair == pair:
                return it
        return None

    # ---- fills --------------------------------------------------------------------------------

    def add_unapplied(self, ts_ms: int, rowid: int, fill: Fill) -> None:
        rows = self.unapplied.get(fill.pair)
        if rows is not None:
            insort(rows, (ts_ms, rowid, fill), key=lambda r: (r[0], r[1]))

    def mark_applied(self, fill_ids: list[str]) -> None:
        if not fill_ids or not self.unapplied:
            return
        gone = set(fill_ids)
        for pair, rows in self.unapplied.items():
            self.unapplied[pair] = [r for r in rows if r[2].fill_id not in gone]
