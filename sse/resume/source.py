"""Where a follower reads a resumable stream from: the ``Source`` protocol and its failures.

Two sources implement it: ``memory.LocalSource`` (the frame log of a
generation in this process) and ``redis.RedisSource`` (a stream another
instance writes to Redis).  Both import this module and the frame log,
nothing above them.
"""

from __future__ import annotations

from typing import Protocol

from .framelog import Batch

# How long a cancel waits for the generation -- here or on another instance --
# to write its terminal frame before it answers 202 ``cancelling``.
CANCEL_WAIT_S = 5.0


class StreamLost(Exception):
    """The stream can no longer be followed: its generating instance is gone, or its frames expired."""


class SourceUnavailable(Exception):
    """The store holding the stream (Redis) cannot be read just now."""

    def __init__(self, why: BaseException | str) -> None:
        if isinstance(why, BaseException):
            why = str(why) or type(why).__name__
        super().__init__(f"the stream store is unavailable: {why}")


class Source(Protocol):
    """Where a follower reads a stream's frames from."""

    stream_id: str
    local: bool  # the generation runs in this process

    def check(self, after: int) -> None:
        """Raise ``FramesExpired`` if frames right after ``after`` are no longer kept."""

    def finished_after(self, after: int) -> bool:
        """The stream has ended and nothing follows frame ``after``."""

    async def next(self, after: int, within: float) -> Batch:
        """Frames after ``after``, waiting up to ``within`` seconds for one (an empty batch if none came)."""

    def attach(self) -> None: ...

    def detach(self) -> None: ...
