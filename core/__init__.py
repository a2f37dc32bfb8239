"""Shared vocabulary: config models, timeframes, errors, the candle store. Imports nothing of ours."""
