"""Give the memory of ended streams back to the operating system.

A burst of streams -- a wave of clients that stopped reading, a spike of long
answers -- grows the C heap by their buffers.  When they end, glibc keeps the
freed memory inside its heap for reuse rather than returning it, so the
process stays at the burst's peak, and the next burst, allocating around what
is still live, leaves it bigger again (the bench's ``stalled`` scenario
measured about 12 MB kept after 200 stalled clients, and a few more after each
later wave).  ``malloc_trim(0)`` hands the free pages back, those inside the
heap too; it costs a few milliseconds for a heap of tens of megabytes, with
the event loop waiting.

So the trimmer calls it at most once per ``interval`` seconds, and only when
at least ``min_ended`` streams have ended since its last call: a quiet
service never pays for it, a busy one a few milliseconds every ``interval``
seconds, and a burst is given back about a second after it ends.  Where the
C library has no ``malloc_trim`` (musl, macOS) it does nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import time
from collections.abc import Callable

log = logging.getLogger("llm_sse.heap")

# At most one trim this often (each is a pause of a few milliseconds).
TRIM_INTERVAL = 10.0
# How often the count of ended streams is looked at.
CHECK_EVERY = 1.0
# Fewer ended streams than this since the last trim: too little freed to be worth the pause.
MIN_ENDED = 32


def _malloc_trim() -> Callable[[], object] | None:
    """glibc's ``malloc_trim(0)``, or None where the C library has none."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: trim(0)


class HeapTrimmer:
    """Calls ``trim`` after bursts of ended streams: at most every ``interval`` s, after ``min_ended`` ends.

    ``ended`` is the process's count of streams ended so far (the registry's).
    """

    def __init__(
        self,
        ended: Callable[[], int],
        *,
        interval: float = TRIM_INTERVAL,
        min_ended: int = MIN_ENDED,
        trim: Callable[[], object] | None = None,
    ) -> None:
        self.ended = ended
        self.interval = interval
        self.min_ended = min_ended
        self.trim = trim if trim is not None else _malloc_trim()
        self._seen = ended()
        self._next = 0.0

    def check(self) -> bool:
        """Trim if enough streams ended since the last trim, and it was long enough ago; True if it did."""
        ended = self.ended()
        started = time.monotonic()
        if self.trim is None or ended - self._seen < self.min_ended or started < self._next:
            return False
        self._seen = ended
        self._next = started + self.interval
        self.trim()
        log.debug(
            "heap trimmed",
            extra={"streams_ended": ended, "ms": round((time.monotonic() - started) * 1000, 2)},
        )
        return True

    async def run(self) -> None:
        """Check every second, until cancelled: a burst is given back about a second after it ends."""
        while True:
            await asyncio.sleep(CHECK_EVERY)
            self.check()
