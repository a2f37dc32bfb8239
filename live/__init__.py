"""The live runner: candle close -> features -> regime -> engine -> reconcile -> orders; state, guards, watcher."""
