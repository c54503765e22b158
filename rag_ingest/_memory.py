"""Handing freed memory back to the system.

glibc keeps what a process frees for its next allocations, so a long-lived processor's
resident size stepped up with each large pass and stayed there (measured: one processor
ingesting 303 files six times ended its passes at 304, 524, 561, 586, 615 and 631 MiB;
with ``malloc_trim(0)`` after each, 238-320 MiB, each trim 6-13 ms). ``malloc_trim``
returns the free pages. Where there is no glibc (musl, macOS, Windows) nothing is done.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import sys
import threading
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)

# A trim when idle only once this much more is resident than after the last idle trim:
# a processor serving one small document at a time does not trim after each (a trim
# walks every arena: 5-36 ms measured, 395 ms on a 4.9 GB heap).
IDLE_GROWTH = 16 * 1024 * 1024
# While documents keep coming (a server never idle), a trim at most this often.
BUSY_INTERVAL = 30.0


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None).malloc_trim  # the C library the process runs on
    except (OSError, AttributeError):  # musl has no malloc_trim
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return fn  # type: ignore[no-any-return]


def can_trim() -> bool:
    """Whether this process's C library can hand freed memory back (glibc)."""
    return _malloc_trim() is not None


def resident() -> int | None:
    """This process's resident size in bytes (Linux), or None."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


class Trimmer:
    """Decides when a process hands its freed memory back, and does it.

    :meth:`due` is cheap (a clock read, or ``/proc/self/statm``); :meth:`trim` walks the
    heap, so it belongs off an event loop. Thread-safe: a trim already running makes
    another a no-op.
    """

    def __init__(
        self, idle_growth: int = IDLE_GROWTH, busy_interval: float = BUSY_INTERVAL
    ) -> None:
        self.idle_growth = idle_growth
        self.busy_interval = busy_interval
        self._lock = threading.Lock()
        self._floor = resident() or 0  # resident after the last idle trim
        self._last = time.monotonic()
        self.trims = 0

    def due(self, *, idle: bool) -> bool:
        """Idle (nothing in flight): whether the resident size grew by ``idle_growth``
        since the last idle trim. Busy: whether ``busy_interval`` seconds have passed
        since the last trim."""
        if not can_trim():
            return False
        if not idle:
            return time.monotonic() - self._last >= self.busy_interval
        now = resident()
        return now is not None and now - self._floor >= self.idle_growth

    def trim(self, *, idle: bool) -> bool:
        """Hand freed memory back now; False when it cannot be or another trim runs."""
        trim = _malloc_trim()
        if trim is None or not self._lock.acquire(blocking=False):
            return False
        try:
            trim(0)
            self._last = time.monotonic()
            self.trims += 1
            if idle:
                self._floor = resident() or 0
            return True
        except Exception:  # never a document's failure
            logger.debug("malloc_trim failed", exc_info=True)
            return False
        finally:
            self._lock.release()
