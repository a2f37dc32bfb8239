"""The runner's injectable clock: wall time in production, the emulator's virtual time in replay.

The runner never reads `time.time()` itself. It asks its clock for `now_ms()` and to `sleep_until()`
the next bar close; a stop event interrupts any sleep so SIGINT/SIGTERM take effect at once.

- `WallClock`: real UTC time, real sleeps (paper and live trading).
- `DrivingClock`: replay. Sleeping *moves* the emulator's virtual clock to the wake-up time, so a
  month of 5m bars passes as fast as the stack can process it.
- `FollowingClock`: another process owns the virtual clock (tests drive an emulator in lockstep with a
  runner subprocess); the runner polls that clock's time (e.g. the venue's server time).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int: ...

    def sleep_until(self, ts_ms: int, stop: threading.Event) -> bool:
        """Return True when `ts_ms` was reached, False when `stop` was set first."""
        ...


class WallClock:
    def now_ms(self) -> int:
        return int(time.time() * 1000)

    def sleep_until(self, ts_ms: int, stop: threading.Event) -> bool:
        while not stop.is_set():
            left_s = (ts_ms - self.now_ms()) / 1000.0
            if left_s <= 0:
                return True
            stop.wait(min(left_s, 1.0))  # wake up at least every second: clock jumps (NTP, suspend)
        return False


class VirtualTime(Protocol):
    """What `DrivingClock` needs of `exchange.emulator.VirtualClock`."""

    def now_ms(self) -> int: ...

    def set(self, ms: int) -> int: ...


class DrivingClock:
    """Replay: sleeping sets the emulator's clock forward to the wake-up time (never backwards). The
    exchange client reads that clock before each request (`CcxtVenue.follow_driven_clock`)."""

    def __init__(self, virtual: VirtualTime) -> None:
        self.virtual = virtual

    def now_ms(self) -> int:
        return int(self.virtual.now_ms())

    def sleep_until(self, ts_ms: int, stop: threading.Event) -> bool:
        if stop.is_set():
            return False
        if ts_ms > self.virtual.now_ms():
            self.virtual.set(ts_ms)
        return True


class FollowingClock:
    """Polls a time source owned elsewhere (the emulator's server time) until it reaches the target."""

    def __init__(self, source_ms: Callable[[], int], poll_s: float = 0.01) -> None:
        self._source_ms = source_ms
        self._poll_s = poll_s

    def now_ms(self) -> int:
        return int(self._source_ms())

    def sleep_until(self, ts_ms: int, stop: threading.Event) -> bool:
        while not stop.is_set():
            if self.now_ms() >= ts_ms:
                return True
            stop.wait(self._poll_s)
        return False


def floor_to_bar(ts_ms: int, timeframe_ms: int) -> int:
    return ts_ms - ts_ms % timeframe_ms
