"""Grid and averaging (DCA) engine, OHLC fill model, simulator and trading metrics (see README.md)."""

from strategies._nbcache import drop_stale_caches

drop_stale_caches()
