"""A connection reading a resumable stream: replay after an id, then follow live.

Followers are the POST that started a resumable stream and every
``GET /api/streams/{id}``.  Each reads frames from a ``Source`` -- the frame
log of a generation in this process, or a Redis Stream written by another
instance -- and writes them to its own client with its own heartbeats
(``: ping`` after ``heartbeat`` seconds of silence towards it) and its own
``send_timeout``.  Nothing a follower does reaches the generation except its
presence: a follower that leaves never stops the upstream (the grace window
does, or an explicit cancel).

The POST commits its HTTP status late, like an ordinary stream (on its first
frame or first heartbeat), so an upstream that fails before any event still
gets the client a real status and a JSON error.  A GET commits at once and
starts with a ``retry:`` field, so a native ``EventSource`` reconnects after
a second and sends ``Last-Event-ID``.

A follower's own error frames (``frames_expired`` when it fell further behind
than the log keeps, ``stream_lost`` when the generating instance vanished)
carry no ``id``: they are not part of the stream, and a client's last event
id stays on the last frame it really got.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from aiohttp import web

from .. import frames
from ..errors import ApiError
from .framelog import Batch, FramesExpired
from ..stream.generation import PING, SSE_HEADERS, ClientGone, ClientWriter, SendTimeout, StreamRegistry
from .generation import ResumableGeneration
from ..settings import Settings

log = logging.getLogger("llm_sse.follower")

# A browser's EventSource waits this long before reconnecting (its default is about 3 s).
RETRY_MS = 1000


class StreamLost(Exception):
    """The stream can no longer be followed: its generating instance is gone, or its frames expired."""


class SourceUnavailable(Exception):
    """The store holding the stream (Redis) cannot be read just now."""


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


class LocalSource:
    """The frame log of a generation in this process.

    Waiting costs one future per wake-up and one timer per heartbeat interval,
    not one per frame: the timer is armed for the follower's deadline and,
    when it fires early because frames were written meanwhile, re-armed for
    the new one (as the relay's watchdog does).
    """

    local = True

    def __init__(self, generation: ResumableGeneration) -> None:
        self.generation = generation
        self.stream_id = generation.id
        self.log = generation.log
        self._loop = asyncio.get_running_loop()
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._waiter: asyncio.Future[bool] | None = None

    def check(self, after: int) -> None:
        self.log.check(after)

    def finished_after(self, after: int) -> bool:
        return self.log.finished and after >= self.log.last_seq

    async def next(self, after: int, within: float) -> Batch:
        batch = self.log.read(after)
        if batch.frames or batch.terminal:
            return batch
        self._deadline = self._loop.time() + within
        if self._timer is None:
            self._timer = self._loop.call_at(self._deadline, self._on_timer)
        waiter = self._waiter = self.log.waiter()
        try:
            await waiter
        finally:
            self._waiter = None
            if not waiter.done():
                waiter.cancel()
                self.log.forget(waiter)
        return self.log.read(after)

    def _on_timer(self) -> None:
        self._timer = None
        waiter = self._waiter
        if waiter is None or waiter.done():
            return  # not waiting now: the next wait arms a timer again
        if self._loop.time() < self._deadline:
            self._timer = self._loop.call_at(self._deadline, self._on_timer)
            return
        self.log.forget(waiter)
        waiter.set_result(False)

    def attach(self) -> None:
        self.generation.attach()

    def detach(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.generation.detach()


class Follower(ClientWriter):
    """Write a stream's frames after ``after`` to one client, then follow live until the terminal frame."""

    def __init__(
        self,
        request: web.Request,
        source: Source,
        after: int,
        settings: Settings,
        registry: StreamRegistry,
        *,
        kind: str,
        client: str,
        creator_meta: Callable[[], bytes] | None = None,
        early_error: Callable[[], ApiError | None] | None = None,
        left_early: Callable[[], object] | None = None,
        on_finish: Callable[[str, str], None] | None = None,
        before_meta: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.request = request
        self.source = source
        self.after = after
        self.settings = settings
        self.registry = registry
        self.kind = kind  # "post" (started the stream) or "resume"
        self.client = client
        self.creator_meta = creator_meta
        self.early_error = early_error
        self.left_early = left_early  # called if the client leaves before it got ``meta``
        self.on_finish = on_finish  # (kind, outcome), for the metrics
        self.before_meta = before_meta  # awaited before ``meta`` (and the token) go out
        self.response = web.StreamResponse(headers=SSE_HEADERS)
        self._loop = asyncio.get_running_loop()
        self._committed = False
        self.last_write = self._loop.time()
        self._frames_sent = 0
        self._got_meta = after >= 1
        self._task: asyncio.Task[object] | None = None
        self._aborted_for: SendTimeout | None = None

    def end(self, error: ApiError) -> None:
        """At shutdown: a follower of a local generation gets its terminal frame from the log;
        one following another instance's generation just closes, and its client resumes elsewhere."""
        if not self.source.local and self._task is not None and not self._task.done():
            self._task.cancel()

    async def run(self) -> web.StreamResponse:
        self._task = asyncio.current_task()
        self.source.attach()
        self.registry.add_follower(self)
        started = time.monotonic()
        outcome, message = "cancelled", None
        last = self.after
        try:
            if self.kind == "resume":
                await self._commit()
                await self._send(frames.encode(retry=RETRY_MS))
            heartbeat = self.settings.heartbeat
            while True:
                wait = self.last_write + heartbeat - self._loop.time()
                if wait <= 0:
                    await self._commit()
                    await self._send(PING)
                    continue
                try:
                    batch = await self.source.next(last, wait)
                except FramesExpired as expired:
                    outcome, message = "frames_expired", str(expired)
                    return await self._fail("frames_expired", str(expired))
                except StreamLost as lost:
                    outcome, message = "stream_lost", str(lost)
                    return await self._fail("stream_lost", str(lost))
                if batch.frames:
                    if not self._committed and batch.terminal and self.early_error is not None:
                        error = self.early_error()
                        if error is not None:
                            outcome, message = error.code, error.message
                            return web.json_response(error.body(), status=error.status, headers=error.headers())
                    pieces = batch.frames
                    if last == 0 and self.before_meta is not None:
                        await self.before_meta()
                    if last == 0 and self.creator_meta is not None:
                        pieces = [self.creator_meta(), *pieces[1:]]
                    await self._commit()
                    await self._send(b"".join(pieces) if len(pieces) > 1 else pieces[0])
                    self._frames_sent += len(pieces)
                    self._got_meta = True
                    last = batch.last
                if batch.terminal:
                    await self._commit()
                    await self.response.write_eof()
                    outcome = "done"
                    return self.response
        except (ClientGone, SendTimeout) as gone:
            outcome, message = self._outcome_of(gone)
            return self.response
        except SourceUnavailable as exc:
            # Ended without a terminal frame: the client resumes, here or elsewhere.
            outcome, message = "source_unavailable", str(exc)
            return self.response
        except asyncio.CancelledError:
            outcome, message = self._outcome_of(self._aborted_for or ClientGone())
            raise
        finally:
            self.registry.remove_follower(self)
            self.source.detach()
            if not self._got_meta and outcome != "done" and self.left_early is not None:
                self.left_early()
            if self.on_finish is not None:
                self.on_finish(self.kind, outcome)
            log.info(
                "follower",
                extra={
                    "stream": self.source.stream_id,
                    "kind": self.kind,
                    "client": self.client,
                    "after": self.after,
                    "last": last,
                    "frames": self._frames_sent,
                    "outcome": outcome,
                    "duration_ms": round((time.monotonic() - started) * 1000, 1),
                    **({"error": message} if message else {}),
                },
            )

    def _outcome_of(self, gone: ClientGone | SendTimeout) -> tuple[str, str | None]:
        if isinstance(gone, SendTimeout):
            return "send_timeout", f"the client read nothing for {self.settings.send_timeout:g} s"
        return "cancelled", None

    async def _fail(self, code: str, message: str) -> web.StreamResponse:
        """End this follower (not the stream) with an error frame that has no id."""
        await self._commit()
        await self._send(frames.encode("error", {"code": code, "message": message}))
        await self.response.write_eof()
        return self.response

    async def _commit(self) -> None:
        if not self._committed:
            self._committed = True
            await self.response.prepare(self.request)
