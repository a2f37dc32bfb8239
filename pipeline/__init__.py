"""Offline steps (import, download, features, train, tune, backtest, retrain) and the CLI composing them."""
