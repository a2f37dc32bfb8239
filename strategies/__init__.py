"""The grid + averaging engine (pure, numba-compiled), the OHLC fill model, the simulator, metrics."""
