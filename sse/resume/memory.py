"""Where this process keeps resumable streams, and how a resume or a cancel finds one.

In memory, always: every resumable generation of this process and its frame
log, live and then for ``resume_retention`` seconds after its end, at most
``resume_max_streams`` of them (over it, the oldest ended one is dropped
early; if none has ended, a new resumable request gets a 503).

With ``REDIS_URL`` also in Redis (``sse.resume.redis``): each log is copied
there, so a stream this process does not hold -- started on another
instance, or dropped here -- is found and followed from Redis, and a cancel
for it is passed on to the instance generating it.

A wrong token is answered exactly like an unknown id (404): the answer never
says whether a stream exists to someone who may not read it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from ..chat import ChatRequest
from ..errors import ApiError
from ..providers.base import Provider
from ..redis_client import RedisClients, describe_url, redis_url
from ..routing import ProviderRouter
from ..settings import Settings
from ..stream.registry import StreamRegistry, shutdown_error
from ..streamlog import StreamObserver, StreamRecord
from .framelog import Batch
from .generation import ResumableGeneration
from .source import CANCEL_WAIT_S, Source
from .token import hash_token, new_token, token_matches

log = logging.getLogger("llm_sse.resumable")

# How long a new stream's first frames may wait for the stream to be written to Redis.
STORE_WAIT_S = 2.0


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


class StreamNotFound(ApiError):
    status = 404
    code = "stream_not_found"

    def __init__(self) -> None:
        super().__init__("no stream with this id and token (it may have expired)")


class ResumableStreams:
    """The resumable streams of this process, and the shared store when there is one."""

    def __init__(
        self, settings: Settings, registry: StreamRegistry, observers: list[StreamObserver], redis: RedisClients
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.observers = observers
        self.redis_clients = redis
        self._local: OrderedDict[str, ResumableGeneration] = OrderedDict()
        self._expiry: dict[str, asyncio.TimerHandle] = {}
        self.redis: Any = None  # sse.resume.redis.RedisStreams, imported only with REDIS_URL

    # -- life

    async def start(self) -> None:
        url = redis_url(self.settings)
        if url:
            from .redis import RedisStreams

            client = self.redis_clients.get(url)
            self.redis = RedisStreams(self.settings, client, describe_url(url), on_cancel=self._cancel_here)
            await self.redis.start()

    async def close(self) -> None:
        """Application cleanup: end what still generates, forget the rest."""
        live = [g for g in self._local.values() if g.live]
        for generation in live:
            generation.end(shutdown_error())
        for generation in live:
            await generation.wait_ended(5.0)
        for handle in self._expiry.values():
            handle.cancel()
        self._expiry.clear()
        self._local.clear()
        if self.redis is not None:
            await self.redis.close()

    @property
    def held(self) -> int:
        """Streams held in this process's memory (live and retained)."""
        return len(self._local)

    # -- starting

    def create(
        self,
        chat: ChatRequest,
        router: ProviderRouter[Provider],
        record: StreamRecord,
        meta_extra: Mapping[str, Any] | None = None,
    ) -> tuple[ResumableGeneration, str]:
        """A new generation (not started) and its resume token, which only the caller ever sees."""
        self._make_room()
        token = new_token()
        generation = ResumableGeneration(
            chat,
            router,
            self.settings,
            record,
            token_hash=hash_token(token),
            registry=self.registry,
            observers=self.observers,
            remote_presence=self.redis.presence_remaining if self.redis is not None else None,
            meta_extra=meta_extra,
        )
        self._local[generation.id] = generation
        generation.on_end(self._ended)
        if self.redis is not None:
            self.redis.copy(generation)
        else:
            generation.stored.set()
        return generation, token

    async def stored(self, generation: ResumableGeneration) -> None:
        """Wait (briefly) until ``generation`` can be resumed from any instance.

        Called before its client gets the token.  With Redis the stream is
        written there as it starts, while the model loads, so this rarely
        waits; while Redis is failing it does not wait at all.
        """
        if generation.stored.is_set() or self.redis is None or not self.redis.available:
            return
        try:
            async with asyncio.timeout(STORE_WAIT_S):
                await generation.stored.wait()
        except TimeoutError:
            log.warning("stream not yet in redis when its client got the token", extra={"stream": generation.id})

    def _make_room(self) -> None:
        if len(self._local) < self.settings.resume_max_streams:
            return
        for stream_id, generation in self._local.items():
            if not generation.live:
                log.info("resumable stream dropped early", extra={"stream": stream_id, "why": "resume_max_streams"})
                self._drop(stream_id)
                return
        raise ApiError(
            f"this server already holds {self.settings.resume_max_streams} resumable streams; try again shortly",
            status=503,
            code="too_many_resumable_streams",
            retry_after=5,
        )

    def _ended(self, generation: ResumableGeneration) -> None:
        loop = asyncio.get_running_loop()
        self._expiry[generation.id] = loop.call_later(self.settings.resume_retention, self._drop, generation.id)

    def _drop(self, stream_id: str) -> None:
        self._local.pop(stream_id, None)
        if self.redis is not None:
            self.redis.forget(stream_id)
        handle = self._expiry.pop(stream_id, None)
        if handle is not None:
            handle.cancel()

    # -- finding

    async def open(self, stream_id: str, token: str) -> Source:
        """The stream to follow; ``StreamNotFound`` for an unknown id or a wrong token."""
        generation = self._local.get(stream_id)
        if generation is not None:
            if not token_matches(token, generation.token_hash):
                raise StreamNotFound()
            return LocalSource(generation)
        if self.redis is not None:
            source: Source | None = await self.redis.open(stream_id, token)
            if source is not None:
                return source
        raise StreamNotFound()

    async def cancel(self, stream_id: str, token: str) -> tuple[int, str]:
        """Cancel a stream: the HTTP status and the state to answer (``cancelled``, ``ended``, ``cancelling``)."""
        generation = self._local.get(stream_id)
        if generation is not None:
            if not token_matches(token, generation.token_hash):
                raise StreamNotFound()
            if not generation.cancel():
                return 200, "ended"
            if await generation.wait_ended(CANCEL_WAIT_S):
                return 200, "cancelled"
            return 202, "cancelling"
        if self.redis is not None:
            answer: tuple[int, str] | None = await self.redis.cancel(stream_id, token)
            if answer is not None:
                return answer
        raise StreamNotFound()

    def _cancel_here(self, stream_id: str) -> None:
        """A cancel from another instance (already authorised there)."""
        generation = self._local.get(stream_id)
        if generation is not None and generation.cancel():
            log.info("stream cancelled from another instance", extra={"stream": stream_id})
