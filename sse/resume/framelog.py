"""A resumable stream's frames, kept in memory within bounds, for followers.

The generation appends each encoded frame (``id`` ``n`` for the ``n``-th
frame); followers read every frame after the last one they delivered, then
wait for more.  Nothing here knows about HTTP: a follower may be the POST that
started the stream, a later ``GET /api/streams/{id}``, or the copy to Redis.

Bounds: at most ``max_frames`` frames and ``max_bytes`` bytes.  Over either,
the oldest frames go -- except the first (``meta``: a late reader needs the
model and provider) and the newest (the terminal frame must stay readable).
A reader asking for frames that are gone gets ``FramesExpired`` naming them,
never a silent gap.

Appending costs a list append and two additions; waking readers costs nothing
while none waits.  Frames are stored as the bytes the client receives, so a
replay writes them as they are.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass


class FramesExpired(Exception):
    """Frames after ``after`` up to ``first_kept - 1`` are no longer kept."""

    def __init__(self, after: int, first_kept: int) -> None:
        self.after = after
        self.first_kept = first_kept
        first_gone, last_gone = after + 1, first_kept - 1
        gone = f"frame {first_gone} is" if first_gone == last_gone else f"frames {first_gone} to {last_gone} are"
        super().__init__(
            f"{gone} no longer kept (the stream's buffer holds its newest frames only); "
            f"the earliest frame to resume after is {last_gone}"
        )


@dataclass(frozen=True, slots=True)
class Batch:
    """Frames read in one go: their bytes, the id of the last, and whether it ends the stream."""

    frames: list[bytes]
    last: int
    terminal: bool = False

    @property
    def data(self) -> bytes:
        return b"".join(self.frames)


class FrameLog:
    """The frames of one stream: append, read after an id, wait for more."""

    def __init__(self, max_frames: int, max_bytes: int) -> None:
        self.max_frames = max(1, max_frames)
        self.max_bytes = max_bytes
        self.head: bytes | None = None  # frame 1, never evicted
        self._frames: list[bytes] = []  # frames ``_base`` onwards; the first ``_start`` are evicted
        self._base = 2
        self._start = 0
        self.bytes = 0  # of the frames kept after the head
        self.last_seq = 0
        self.finished = False
        self._waiters: list[asyncio.Future[bool]] = []

    # -- writing

    def append(self, seq: int, data: bytes) -> None:
        """Add frame ``seq`` (the next id; ids start at 1 and have no gaps)."""
        if seq != self.last_seq + 1 or self.finished:
            raise ValueError(f"frame {seq} cannot follow frame {self.last_seq}")
        self.last_seq = seq
        if seq == 1:
            self.head = data
        else:
            self._frames.append(data)
            self.bytes += len(data)
            if self.bytes > self.max_bytes or len(self._frames) - self._start > self.max_frames:
                self._evict()
        if self._waiters:
            self._wake()

    def close(self) -> None:
        """No frame follows the last one: it was the terminal frame."""
        self.finished = True
        self._wake()

    def _evict(self) -> None:
        frames = self._frames
        while len(frames) - self._start > 1 and (
            self.bytes > self.max_bytes or len(frames) - self._start > self.max_frames
        ):
            self.bytes -= len(frames[self._start])
            frames[self._start] = b""
            self._start += 1
        if self._start > 256 and self._start * 2 > len(frames):
            del frames[: self._start]
            self._base += self._start
            self._start = 0

    # -- reading

    @property
    def first_kept(self) -> int:
        """The id of the oldest frame kept after the head (``last_seq + 1`` when none is)."""
        return self._base + self._start

    @property
    def frame_count(self) -> int:
        return (self.head is not None) + len(self._frames) - self._start

    def check(self, after: int) -> None:
        """Raise ``FramesExpired`` if frames right after ``after`` are gone."""
        first = self.first_kept
        if after == 0 and self.head is not None:
            after = 1
        if after + 1 < first and after < self.last_seq:
            raise FramesExpired(after if after > 1 else 1, first)

    def read(self, after: int) -> Batch:
        """Every frame after id ``after`` that is still kept."""
        self.check(after)
        out: list[bytes] = []
        if after == 0 and self.head is not None:
            out.append(self.head)
            after = 1
        if after < self.last_seq:
            out.extend(self._frames[after + 1 - self._base :])
        last = self.last_seq if out else after
        # ``after`` may lie beyond the last frame (a client's claim): once the log is closed, nothing will come.
        return Batch(out, last, self.finished and last >= self.last_seq)

    async def wait(self, after: int, within: float | None) -> bool:
        """Wait until there is a frame after ``after`` or the log is closed; False if ``within`` s passed first."""
        if self.last_seq > after or self.finished:
            return True
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        self._waiters.append(waiter)
        # One future and one timer per wait (``asyncio.wait_for`` would add a second future per frame).
        timer = loop.call_later(within, _resolve, waiter, False) if within is not None else None
        try:
            return await waiter
        finally:
            if timer is not None:
                timer.cancel()
            if not waiter.done():
                waiter.cancel()
            if waiter in self._waiters:  # not taken by a wake-up: timed out or cancelled
                self._waiters.remove(waiter)

    def waiter(self) -> asyncio.Future[bool]:
        """A future set to True by the next frame or the close; the caller may set it to False itself.

        For a reader that keeps one timer of its own across many waits (a
        follower's heartbeat) instead of one per wait.
        """
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if self.finished:
            waiter.set_result(True)
        else:
            self._waiters.append(waiter)
        return waiter

    def forget(self, waiter: asyncio.Future[bool]) -> None:
        """Stop tracking a waiter its owner resolved or gave up."""
        if waiter in self._waiters:
            self._waiters.remove(waiter)

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            _resolve(waiter, True)


def _resolve(waiter: asyncio.Future[bool], value: bool) -> None:
    if not waiter.done():
        waiter.set_result(value)
