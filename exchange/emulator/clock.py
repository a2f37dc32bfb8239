"""The emulator's virtual clock: a start time plus a speed factor, or manual control for tests.

Every time the emulator shows (server time endpoints, which candles exist, order timestamps) comes
from here, never from the wall clock directly, so a test can stand at 2024-03-01 12:00 and step
forward one candle at a time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class VirtualClock:
    """`now_ms() = start_ms + elapsed_wall_ms * speed (+ manual advances)`.

    `speed=0` freezes time: it moves only through `advance()` / `set()` (the usual test setting).
    `speed=1` runs at wall pace, `speed=60` plays one minute per second.
    """

    def __init__(
        self,
        start_ms: int | None = None,
        speed: float = 1.0,
        wall_ms: Callable[[], float] | None = None,
    ) -> None:
        if speed < 0:
            raise ValueError(f"clock speed must be >= 0, got {speed}")
        self._wall_ms = wall_ms or (lambda: time.monotonic() * 1000.0)
        self._lock = threading.Lock()
        self._speed = float(speed)
        self._anchor_virtual_ms = float(start_ms if start_ms is not None else time.time() * 1000.0)
        self._anchor_wall_ms = self._wall_ms()

    @property
    def speed(self) -> float:
        return self._speed

    def now_ms(self) -> int:
        with self._lock:
            return int(self._virtual_locked())

    def advance(self, ms: int) -> int:
        """Move forward by `ms` (never backwards); returns the new time."""
        if ms < 0:
            raise ValueError("the clock never goes backwards; use set() to rewind explicitly")
        with self._lock:
            self._rebase_locked(self._virtual_locked() + ms)
            return int(self._anchor_virtual_ms)

    def set(self, ms: int) -> int:
        """Jump to `ms` (tests may rewind; a running server's clients will see time go back)."""
        with self._lock:
            self._rebase_locked(float(ms))
            return int(ms)

    def set_speed(self, speed: float) -> None:
        if speed < 0:
            raise ValueError(f"clock speed must be >= 0, got {speed}")
        with self._lock:
            self._rebase_locked(self._virtual_locked())
            self._speed = float(speed)

    def _virtual_locked(self) -> float:
        return self._anchor_virtual_ms + (self._wall_ms() - self._anchor_wall_ms) * self._speed

    def _rebase_locked(self, virtual_ms: float) -> None:
        self._anchor_virtual_ms = virtual_ms
        self._anchor_wall_ms = self._wall_ms()
