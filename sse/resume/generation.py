"""A resumable stream's generation: it writes to a frame log, not to a connection.

Shape (ARCHITECTURE.md, "A resumable stream's task shape"): the generation is
a task of its own, not tied to any request.  Its coordinator starts the same
**pump** as an ordinary stream (``relay.Generation``: providers in order, the
first-token timeout, events to numbered frames) and an **idle watchdog** (the
upstream's silence after its first event), waits for the first to end, stops
the other, and only then appends the terminal frame and closes the log.

Readers are followers (``sse.follower``): the POST that started the stream and
any later ``GET /api/streams/{id}``, each with its own heartbeats and send
timeout.  The generation only counts them.  When the last one leaves, a
**grace** timer starts (``resume_grace``); a follower arriving stops it; when
it fires (and no follower on another instance has been seen within the window)
the generation ends with ``abandoned``, which closes the upstream.

``end(error)`` ends it from outside: an explicit cancel (``cancelled``), the
grace timer (``abandoned``) or shutdown (``shutdown``).  Cancelling the pump
closes the upstream response at once, as for an ordinary stream.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from .. import frames
from ..chat import ChatRequest
from ..errors import ApiError, UpstreamTimeout
from ..events import Done
from .framelog import FrameLog
from ..providers.base import Provider
from ..stream.generation import Generation, StreamRegistry, _stop
from ..routing import ProviderRouter
from ..settings import Settings
from ..streamlog import StreamObserver, StreamRecord, finish

log = logging.getLogger("llm_sse.resumable")

RemotePresence = Callable[[str], Awaitable[float]]


class StreamCancelled(ApiError):
    """Stopped on purpose: ``POST /api/streams/{id}/cancel``, or its client left before it could resume."""

    status = 409
    code = "cancelled"


class StreamAbandoned(ApiError):
    """No client followed the stream for the grace window."""

    status = 410
    code = "abandoned"


def stream_url(stream_id: str) -> str:
    return f"/api/streams/{stream_id}"


class ResumableGeneration(Generation):
    """The generation of one resumable stream, writing frames into ``self.log``."""

    def __init__(
        self,
        chat: ChatRequest,
        router: ProviderRouter[Provider],
        settings: Settings,
        record: StreamRecord,
        *,
        token_hash: str,
        registry: StreamRegistry,
        observers: list[StreamObserver],
        remote_presence: RemotePresence | None = None,
    ) -> None:
        super().__init__(chat, router, settings, record)
        self.id = record.id
        self.token_hash = token_hash
        self.log = FrameLog(settings.resume_max_frames, settings.resume_max_bytes)
        self.registry = registry
        self.observers = observers
        self.remote_presence = remote_presence
        # The error that ended the stream before any provider produced an event:
        # the POST that started it answers with its status and JSON if it has
        # not committed its own status yet.
        self.early_error: ApiError | None = None
        self.ended_at: float | None = None
        self.outcome: str | None = None  # set with the terminal frame
        # Set once the stream can be found where resumes look (at once in memory;
        # after the first write with Redis): its client must not get the token before.
        self.stored = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self._pump_task: asyncio.Task[Done] | None = None
        self._watch_task: asyncio.Task[ApiError] | None = None
        self._forced: ApiError | None = None
        self._followers = 0
        self._grace_task: asyncio.Task[None] | None = None
        self._on_end: list[Callable[[ResumableGeneration], None]] = []
        self._releases: list[Callable[[], Awaitable[object]]] = []
        record.extra["resumable"] = True

    # -- life

    def start(self) -> None:
        """Start generating (followers may attach before or after)."""
        self.registry.add(self)
        self._pump_task = asyncio.create_task(self._pump())
        self._watch_task = asyncio.create_task(self._idle_watchdog())
        self.task = asyncio.create_task(self._run())
        if self._followers == 0:
            self._start_grace()

    def on_end(self, callback: Callable[[ResumableGeneration], None]) -> None:
        self._on_end.append(callback)

    def hold_until_end(self, release: Callable[[], Awaitable[object]]) -> None:
        """Await ``release`` when the generation ends: what it holds (its stream slot
        in the limits) lasts as long as the generation, not as its first connection."""
        self._releases.append(release)

    @property
    def live(self) -> bool:
        return not self.log.finished

    def end(self, error: ApiError) -> bool:
        """End the generation with ``error`` as its terminal frame; False if it had ended already."""
        pump = self._pump_task
        if self._forced is not None or pump is None or pump.done():
            return False
        self._forced = error
        pump.cancel()
        return True

    def cancel(self) -> bool:
        return self.end(StreamCancelled("the stream was cancelled"))

    async def wait_ended(self, within: float) -> bool:
        """Wait until the terminal frame is written; False if ``within`` seconds passed first."""
        if self.task is None:
            return not self.live
        done, _ = await asyncio.wait((self.task,), timeout=within)
        return bool(done)

    # -- followers and the grace window

    def attach(self) -> None:
        self._followers += 1
        self.record.extra["followers"] = int(self.record.extra.get("followers", 0)) + 1
        if self._grace_task is not None:
            self._grace_task.cancel()
            self._grace_task = None

    def detach(self) -> None:
        self._followers -= 1
        if self._followers == 0 and self.live and self.task is not None:
            self._start_grace()

    def _start_grace(self) -> None:
        if self._grace_task is None:
            self._grace_task = asyncio.create_task(self._grace())

    async def _grace(self) -> None:
        grace = self.settings.resume_grace
        delay = grace
        while True:
            await asyncio.sleep(delay)
            remaining = 0.0
            if self.remote_presence is not None:
                try:
                    remaining = await self.remote_presence(self.id)
                except Exception as exc:  # Redis unreachable: nobody can follow from elsewhere either
                    log.warning("follower presence unknown", extra={"stream": self.id, "why": str(exc)})
            if remaining <= 0:
                self._grace_task = None
                self.end(StreamAbandoned(f"no client followed the stream for {grace:g} s"))
                return
            delay = remaining

    # -- the coordinator

    async def _run(self) -> None:
        pump, watchdog = self._pump_task, self._watch_task
        assert pump is not None
        assert watchdog is not None
        outcome: str = "shutdown"
        message: str | None = "the service stopped"
        try:
            await asyncio.wait((pump, watchdog), return_when=asyncio.FIRST_COMPLETED)
            result = self._result(pump, watchdog)
            await _stop(pump, watchdog)
            outcome, message = self._finish(result)
            await self._release_upstream()
        finally:
            if self.live:
                # Cancelled without a drain (the application is being torn
                # down): still end the log properly for anyone reading it.
                outcome, message = self._finish(ApiError("the server is shutting down", status=503, code="shutdown"))
            await _stop(pump, watchdog)
            await self._release_upstream()
            if self._grace_task is not None:
                self._grace_task.cancel()
                self._grace_task = None
            self.ended_at = self._loop.time()
            self.registry.remove(self)
            finish(self.record, outcome, self.observers, message)
            for release in self._releases:
                try:
                    await release()
                except Exception:
                    log.exception("releasing a stream's resources failed", extra={"stream": self.id})
            for callback in self._on_end:
                try:
                    callback(self)
                except Exception:
                    log.exception("stream end callback failed", extra={"stream": self.id})

    async def _idle_watchdog(self) -> ApiError:
        """The upstream's silence after its first event; no heartbeats here (followers send their own)."""
        idle = self.settings.idle_timeout
        await asyncio.wait((self._streaming_started,))
        while True:
            idle_at = self.last_upstream + idle
            now = self._loop.time()
            if now >= idle_at:
                return UpstreamTimeout(f"{self.record.provider} sent nothing for {idle:g} s")
            await asyncio.sleep(idle_at - now)

    def _result(self, pump: asyncio.Task[Done], watchdog: asyncio.Task[ApiError]) -> Done | BaseException:
        if pump.done():
            if pump.cancelled():
                return self._forced or StreamCancelled("the stream was cancelled")
            exc = pump.exception()
            return exc if exc is not None else pump.result()
        if watchdog.cancelled():
            return self._forced or StreamCancelled("the stream was cancelled")
        exc = watchdog.exception()
        return exc if exc is not None else watchdog.result()

    def _finish(self, result: Done | BaseException) -> tuple[str, str | None]:
        """Append the terminal frame (after ``meta``, if none was written) and close the log."""
        message: str | None = None
        if isinstance(result, Done):
            name, data = "done", self._done_data(result)
            outcome = "done"
        else:
            if not isinstance(result, ApiError):
                log.error("stream failed", exc_info=result, extra={"stream": self.id})
                result = ApiError("the relay failed; the server log has details")
            if not self._meta_sent:
                self.early_error = result
            name, data = "error", result.frame_data()
            outcome, message = result.code, result.message
        if not self._meta_sent:
            self._meta_sent = True
            self._seq += 1
            self.log.append(self._seq, frames.encode("meta", self._meta_data(), id=self._seq))
        self._seq += 1
        self.log.append(self._seq, frames.encode(name, data, id=self._seq))
        self.log.close()
        self.outcome = outcome
        return outcome, message

    # -- frames

    async def _send(self, data: bytes) -> None:
        self.log.append(self._seq, data)

    def _meta_extra(self) -> dict[str, Any]:
        return {**super()._meta_extra(), "resume": {"url": stream_url(self.id)}}

    def creator_meta(self, token: str) -> bytes:
        """The ``meta`` frame as the client that started the stream gets it: with its resume token.

        The log keeps ``meta`` without the token (only its hash is stored), so
        a replay never hands the token out again.
        """
        data = self._meta_data()
        data["resume"] = {"token": token, **data["resume"]}
        return frames.encode("meta", data, id=1)
