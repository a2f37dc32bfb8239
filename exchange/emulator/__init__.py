"""Loopback exchange emulator: Binance spot and Bitget v2 spot REST from stored candles.

See `exchange.emulator.server` for how to add routes and middleware.
"""

from exchange.emulator.clock import VirtualClock
from exchange.emulator.router import DropConnection, HttpError, Request, Response, Route, Router
from exchange.emulator.server import EmulatorServer, default_providers
from exchange.emulator.state import EmulatorState

__all__ = [
    "DropConnection",
    "EmulatorServer",
    "EmulatorState",
    "HttpError",
    "Request",
    "Response",
    "Route",
    "Router",
    "VirtualClock",
    "default_providers",
]
