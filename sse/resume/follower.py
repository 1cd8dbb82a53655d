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
from collections.abc import Awaitable, Callable, Iterator

from aiohttp import web

from .. import frames
from ..encoders.native import NativeEncoder
from ..errors import ApiError
from ..settings import Settings
from ..stream.race import Ending, Race, gone, watchdog
from ..stream.registry import StreamRegistry
from ..stream.writer import ClientGone, EventStreamWriter, SendTimeout, error_response
from .framelog import Batch, FramesExpired
from .source import Source, SourceUnavailable, StreamLost

log = logging.getLogger("llm_sse.follower")

# A browser's EventSource waits this long before reconnecting (its default is about 3 s).
RETRY_MS = 1000
# A batch goes out in writes of at most about this much: a replay of a long
# stream in one write would hold the whole log twice more (the joined bytes,
# the transport's copy) for a follower that stopped reading.
WRITE_BYTES = 16 * 1024


class Follower:
    """Write a stream's frames after ``after`` to one client, then follow live until the terminal frame.

    A ``Race`` of the **pump** (``_follow``: every batch from the source to
    the client; the terminal batch is returned, not written) and the
    **watchdog** (heartbeats); the terminal batch is written only once the
    watchdog has stopped, so no ping follows it.
    """

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
        self.source = source
        self.after = after
        self.last = after  # the id of the last frame written to the client
        self.settings = settings
        self.registry = registry
        self.kind = kind  # "post" (started the stream) or "resume"
        self.client = client
        self.creator_meta = creator_meta
        self.early_error = early_error
        self.left_early = left_early  # called if the client leaves before it got ``meta``
        self.on_finish = on_finish  # (kind, outcome), for the metrics
        self.before_meta = before_meta  # awaited before ``meta`` (and the token) go out
        self.writer = EventStreamWriter(request, send_timeout=settings.send_timeout)
        self._frames_sent = 0
        self._task: asyncio.Task[object] | None = None

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
        writer = self.writer
        ending = Ending("cancelled")
        race: Race[Batch] | None = None
        try:
            if self.kind == "resume":
                await writer.commit()
                await writer.send(frames.encode(retry=RETRY_MS))
            race = Race(self._follow(), watchdog(writer=writer, heartbeat=self.settings.heartbeat))
            ending, response = await self._finish(await race.result(ClientGone))
            return response
        except (ClientGone, SendTimeout) as reason:
            ending = gone(reason, self.settings.send_timeout)
            return writer.response
        except asyncio.CancelledError:
            ending = gone(writer.gone(), self.settings.send_timeout)
            raise
        finally:
            if race is not None:
                await race.stop()
                race.drop_tracebacks()
            self.registry.remove_follower(self)
            self.source.detach()
            if self.last < 1 and ending.outcome != "done" and self.left_early is not None:
                self.left_early()
            if self.on_finish is not None:
                self.on_finish(self.kind, ending.outcome)
            log.info(
                "follower",
                extra={
                    "stream": self.source.stream_id,
                    "kind": self.kind,
                    "client": self.client,
                    "after": self.after,
                    "last": self.last,
                    "frames": self._frames_sent,
                    "outcome": ending.outcome,
                    "duration_ms": round((time.monotonic() - started) * 1000, 1),
                    **({"error": ending.message} if ending.message else {}),
                },
            )

    async def _follow(self) -> Batch:
        """The pump: write each batch as it comes; return the terminal one unwritten."""
        heartbeat = self.settings.heartbeat
        while True:
            batch = await self.source.next(self.last, heartbeat)
            if batch.terminal:
                return batch
            if batch.frames:
                await self._write(batch)

    async def _write(self, batch: Batch) -> None:
        pieces = batch.frames
        if self.last == 0 and self.before_meta is not None:
            await self.before_meta()
        if self.last == 0 and self.creator_meta is not None:
            pieces = [self.creator_meta(), *pieces[1:]]
        await self.writer.commit()
        for data in _joined(pieces, WRITE_BYTES):
            await self.writer.send(data)
        self._frames_sent += len(pieces)
        self.last = batch.last

    async def _finish(self, result: object) -> tuple[Ending, web.StreamResponse]:
        """The terminal batch, or this follower's own ending (its error frames carry no id)."""
        writer = self.writer
        if isinstance(result, Batch):
            if result.frames and not writer.committed and self.early_error is not None:
                error = self.early_error()
                if error is not None:
                    return Ending(error.code, error.message), error_response(NativeEncoder(), error)
            if result.frames:
                await self._write(result)
            await writer.close()
            return Ending("done"), writer.response
        if isinstance(result, FramesExpired):
            return await self._fail("frames_expired", str(result))
        if isinstance(result, StreamLost):
            return await self._fail("stream_lost", str(result))
        if isinstance(result, ClientGone | SendTimeout):
            return gone(result, self.settings.send_timeout), writer.response
        if isinstance(result, SourceUnavailable):
            # Ended without a terminal frame: the client resumes, here or elsewhere.
            return Ending("source_unavailable", str(result)), writer.response
        assert isinstance(result, BaseException)
        raise result

    async def _fail(self, code: str, message: str) -> tuple[Ending, web.StreamResponse]:
        """End this follower (not the stream) with an error frame that has no id."""
        await self.writer.commit()
        await self.writer.send(frames.encode("error", {"code": code, "message": message}))
        await self.writer.close()
        return Ending(code, message), self.writer.response


def _joined(pieces: list[bytes], limit: int) -> Iterator[bytes]:
    """``pieces`` joined into runs of at most ``limit`` bytes (a longer piece alone)."""
    run: list[bytes] = []
    size = 0
    for piece in pieces:
        if run and size + len(piece) > limit:
            yield b"".join(run) if len(run) > 1 else run[0]
            run, size = [], 0
        run.append(piece)
        size += len(piece)
    if run:
        yield b"".join(run) if len(run) > 1 else run[0]
