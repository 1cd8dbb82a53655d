"""A resumable stream's generation: it writes to a frame log, not to a connection.

Shape (ARCHITECTURE.md, "A resumable stream's task shape"): the generation is
a task of its own, not tied to any request.  It runs the same ``Race`` as a
direct stream: the **pump** (``stream.Generation``: providers in order, the
first-token timeout, events to llm-sse's numbered frames, here appended to a
``FrameLog``) and the **watchdog** (only the upstream's idle timeout: its
followers send their own heartbeats), then the same finishing step, which
appends the terminal frame and closes the log.

Readers are followers (``sse.resume.follower``): the POST that started the
stream and any later ``GET /api/streams/{id}``.  The generation only counts
them.  When the last one leaves, a **grace** timer starts (``resume_grace``);
a follower arriving stops it; when it fires (and no follower on another
instance has been seen within the window) the generation ends with
``abandoned``, which closes the upstream.

``end(error)`` ends it from outside: an explicit cancel (``cancelled``), the
grace timer (``abandoned``) or shutdown (``shutdown``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from .. import frames
from ..chat import ChatRequest
from ..encoders.native import NativeEncoder, meta_data
from ..errors import ApiError
from ..events import Done
from ..providers.base import Provider
from ..routing import ProviderRouter
from ..settings import Settings
from ..stream.generation import Generation
from ..stream.race import Ending, Race, watchdog
from ..stream.registry import StreamRegistry, shutdown_error
from ..streamlog import StreamObserver, StreamRecord, finish
from .framelog import FrameLog

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


class LogSink:
    """A generation's sink that appends each frame to a ``FrameLog`` (nothing to commit)."""

    committed = True

    __slots__ = ("log",)

    def __init__(self, log: FrameLog) -> None:
        self.log = log

    async def commit(self) -> None:
        pass

    async def send(self, data: bytes) -> None:
        self.log.append(self.log.last_seq + 1, data)

    async def close(self) -> None:
        self.log.close()


class ResumableGeneration:
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
        meta_extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.id = record.id
        self.settings = settings
        self.record = record
        self.token_hash = token_hash
        self.log = FrameLog(settings.resume_max_frames, settings.resume_max_bytes)
        self.generation = Generation(
            chat,
            router,
            settings,
            record,
            NativeEncoder(),
            LogSink(self.log),
            meta_extra={**(meta_extra or {}), "resume": {"url": stream_url(self.id)}},
        )
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
        self._race: Race[Done] | None = None
        self._followers = 0
        self._grace_task: asyncio.Task[None] | None = None
        self._on_end: list[Callable[[ResumableGeneration], None]] = []
        self._releases: list[Callable[[], Awaitable[object]]] = []
        self._loop = asyncio.get_running_loop()
        record.extra["resumable"] = True

    # -- life

    def start(self) -> None:
        """Start generating (followers may attach before or after)."""
        self.registry.add(self)
        generation = self.generation
        self._race = Race(generation.pump(), watchdog(upstream=generation, idle_timeout=self.settings.idle_timeout))
        self.task = asyncio.create_task(self._run(self._race))
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
        return self._race is not None and self._race.end(error)

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

    async def _run(self, race: Race[Done]) -> None:
        ending = Ending("shutdown", "the service stopped")
        try:
            result = await race.result(lambda: StreamCancelled("the stream was cancelled"))
            ending = await self._finish(result)
            await self.generation.release_upstream()
        finally:
            if self.live:
                # Cancelled without a drain (the application is being torn
                # down): still end the log properly for anyone reading it.
                ending = await self._finish(shutdown_error())
            await race.stop()
            race.drop_tracebacks()
            await self.generation.release_upstream()
            if self._grace_task is not None:
                self._grace_task.cancel()
                self._grace_task = None
            self.ended_at = self._loop.time()
            self.registry.remove(self)
            finish(self.record, ending.outcome, self.observers, ending.message)
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

    async def _finish(self, result: object) -> Ending:
        """The finishing step of every stream; an error before ``meta`` is kept for the POST."""
        started = self.generation.started
        ending = await self.generation.finish(result)
        if ending.error is not None and not started:
            self.early_error = ending.error
        self.outcome = ending.outcome
        return ending

    def creator_meta(self, token: str) -> bytes:
        """The ``meta`` frame as the client that started the stream gets it: with its resume token.

        The log keeps ``meta`` without the token (only its hash is stored), so
        a replay never hands the token out again.
        """
        meta = self.generation.meta
        assert meta is not None
        data = meta_data(meta)
        data["resume"] = {"token": token, **data["resume"]}
        return frames.encode("meta", data, id=1)
