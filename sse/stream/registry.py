"""What is alive in this process -- streams and followers -- for graceful shutdown and health."""

from __future__ import annotations

import secrets
from typing import Protocol

from ..errors import ApiError
from ..idle import IdleSignal


def new_stream_id() -> str:
    """128 bits from the OS's CSPRNG: ids are unguessable, not just unique."""
    return secrets.token_urlsafe(16)


def shutdown_error() -> ApiError:
    """The terminal error of a stream still open when the service stops."""
    return ApiError("the server is shutting down", status=503, code="shutdown", retry_after=1)


class Endable(Protocol):
    """Something the registry can end at shutdown."""

    def end(self, error: ApiError) -> object: ...


class StreamRegistry:
    """What is alive in this process.

    ``streams`` are generations (a direct stream, or a resumable stream's
    generation); ``followers`` are connections reading a resumable stream.
    ``draining`` turns True when shutdown begins: new streams are refused
    (``http_edges.refuse_while_draining``).  ``ended`` counts the streams and
    followers that have ended so far (``heap.HeapTrimmer`` reads it).
    """

    def __init__(self) -> None:
        self.streams: set[Endable] = set()
        self.followers: set[Endable] = set()
        self.draining = False
        self.ended = 0
        self._idle = IdleSignal()

    def add(self, stream: Endable) -> None:
        self.streams.add(stream)
        self._idle.busy()

    def remove(self, stream: Endable) -> None:
        if stream in self.streams:
            self.streams.remove(stream)
            self.ended += 1
        self._check_idle()

    def add_follower(self, follower: Endable) -> None:
        self.followers.add(follower)
        self._idle.busy()

    def remove_follower(self, follower: Endable) -> None:
        if follower in self.followers:
            self.followers.remove(follower)
            self.ended += 1
        self._check_idle()

    def _check_idle(self) -> None:
        if not self.streams and not self.followers:
            self._idle.idle()

    async def wait_idle(self, within: float) -> bool:
        """Wait until no stream or follower is open; False if ``within`` seconds passed first."""
        return await self._idle.wait(within)

    def end_all(self, error: ApiError) -> None:
        for stream in list(self.streams):
            stream.end(error)
        for follower in list(self.followers):
            follower.end(error)
