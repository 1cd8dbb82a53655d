"""Resumable streams shared through Redis, so a client can resume on any instance.

Used when ``REDIS_URL`` is set (the ``redis`` extra).  The generating instance
keeps its frame log in memory as always and copies it to Redis; any instance
can then replay and follow the stream, and cancel it.

Keys (``{id}`` is the stream id):

* ``llm-sse:stream:{id}`` -- a hash: ``token`` (the resume token's SHA-256,
  never the token), ``owner`` (the generating instance), ``meta`` (frame 1,
  kept apart so trimming never drops it), ``first``/``last`` (the oldest
  frame kept and the newest written), ``state`` (``live``/``ended``) and
  ``outcome``;
* ``llm-sse:frames:{id}`` -- a Redis Stream of frames 2..n, entry id
  ``{n}-0``, field ``f`` the frame's bytes and ``t`` on the terminal frame.
  ``XADD`` with explicit ids and ``MAXLEN`` (``resume_max_frames``), and
  ``XTRIM MINID`` to the generating log's oldest kept frame (its byte bound);
* ``llm-sse:seen:{id}`` -- a follower on another instance was here: set with
  an expiry of the grace window, refreshed while it follows;
* ``llm-sse:instance:{instance}`` -- the instance is alive (a lease refreshed
  every 5 s, expiring after 15 s), so a follower elsewhere notices a crash;
* channel ``llm-sse:cancel`` -- stream ids to cancel; every instance
  subscribes once and cancels the generations it owns.

Writes are batched: the copy is a reader of the log, and each wake-up writes
everything new in one ``MULTI`` pipeline, never a round trip per token.  Both
keys expire ``resume_retention`` seconds after the stream ended (while it is
live, after ``resume_retention + idle_timeout`` without a write, which a live
stream never reaches).

Followers read with ``XREAD BLOCK`` for at most the time until their next
heartbeat or presence refresh, so they keep pinging their client.  Every
Redis call is bounded by the client's socket timeouts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from typing import Any, Protocol

from redis.exceptions import RedisError

from ..redis_client import PREFIX
from ..settings import Settings
from ..streamlog import StreamRecord
from .framelog import Batch, FrameLog, FramesExpired
from .source import CANCEL_WAIT_S, SourceUnavailable, StreamLost
from .token import token_matches

log = logging.getLogger("llm_sse.redis")

CANCEL_CHANNEL = PREFIX + "cancel"
LEASE_S = 15.0
LEASE_REFRESH_S = 5.0
PRESENCE_REFRESH_S = 5.0
READ_COUNT = 512
RETRY_S = 1.0
# While Redis has not answered since start-up, how often to try again.
RECONNECT_S = 5.0
# After its stream ended, a copy that cannot reach Redis gives up after this long.
FINAL_COPY_WITHIN_S = 30.0
# At shutdown, how long the last copies may take.
CLOSE_WAIT_S = 5.0

_ERRORS = (RedisError, OSError, TimeoutError)


def hash_key(stream_id: str) -> str:
    return f"{PREFIX}stream:{stream_id}"


def frames_key(stream_id: str) -> str:
    return f"{PREFIX}frames:{stream_id}"


def seen_key(stream_id: str) -> str:
    return f"{PREFIX}seen:{stream_id}"


def instance_key(instance: str) -> str:
    return f"{PREFIX}instance:{instance}"


def _seq(entry_id: bytes | str) -> int:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.split("-", 1)[0])


class Copied(Protocol):
    """What the copy reads of a generation in this process (``resume.generation.ResumableGeneration``)."""

    id: str
    token_hash: str
    log: FrameLog
    record: StreamRecord
    stored: asyncio.Event

    @property
    def outcome(self) -> str | None: ...

    @property
    def ended_at(self) -> float | None: ...


class RedisStreams:
    """This instance's connection to the shared store: copies, reads, cancels, presence."""

    def __init__(self, settings: Settings, client: Any, where: str, on_cancel: Callable[[str], None]) -> None:
        """``client`` is the application's one client for the URL (``redis_client.RedisClients``);
        ``where`` names Redis in logs (no password)."""
        self.settings = settings
        self.on_cancel = on_cancel
        self.instance = secrets.token_hex(8)
        self.where = where
        # redis-py types every command as "value or awaitable"; results are converted where used.
        self.client: Any = client
        self._pubsub: Any = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._copies: set[asyncio.Task[Any]] = set()
        self._warned = False

    # -- life

    async def start(self) -> None:
        """Connect, or -- if Redis does not answer -- go on without it and keep trying.

        An outage at start-up is treated like one later: this instance serves
        resumable streams from its own memory (resumes on another instance get
        503 ``resume_unavailable``) until Redis answers, as the limits do.
        """
        try:
            await self._connect()
        except _ERRORS as exc:
            self._warn("start-up", exc)
            self._spawn(self._connect_until_up())
            return
        self._serve()

    async def _connect(self) -> None:
        async with asyncio.timeout(self.settings.connect_timeout + 1.0):
            await self.client.ping()
            await self._refresh_lease()
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(CANCEL_CHANNEL)
            except BaseException:
                with contextlib.suppress(*_ERRORS):
                    await pubsub.aclose()
                raise
            self._pubsub = pubsub

    async def _connect_until_up(self) -> None:
        while True:
            await asyncio.sleep(RECONNECT_S)
            try:
                await self._connect()
            except _ERRORS as exc:
                self._warn("start-up", exc)
                continue
            self._recovered()
            self._serve()
            return

    def _serve(self) -> None:
        self._spawn(self._listen())
        self._spawn(self._keep_lease())
        log.info("resumable streams shared through Redis", extra={"redis": self.where, "instance": self.instance})

    async def close(self) -> None:
        # Let the copies write what the ended streams' followers elsewhere still need
        # (a shutdown's terminal frames), then stop everything.
        if self._copies:
            await asyncio.wait(list(self._copies), timeout=CLOSE_WAIT_S)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5.0)
        if self._pubsub is not None:
            with contextlib.suppress(*_ERRORS):
                await self._pubsub.aclose()
        with contextlib.suppress(*_ERRORS):
            await self.client.delete(instance_key(self.instance))

    def _spawn(self, coroutine: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _warn(self, what: str, exc: BaseException) -> None:
        """Log Redis trouble once per episode (it recovers by itself or stays an operator's problem)."""
        if not self._warned:
            self._warned = True
            log.warning(
                "redis unavailable", extra={"redis": self.where, "during": what, "why": str(exc) or type(exc).__name__}
            )

    def _recovered(self) -> None:
        if self._warned:
            self._warned = False
            log.info("redis available again", extra={"redis": self.where})

    async def _refresh_lease(self) -> None:
        await self.client.set(instance_key(self.instance), b"1", px=int(LEASE_S * 1000))

    async def _keep_lease(self) -> None:
        while True:
            await asyncio.sleep(LEASE_REFRESH_S)
            try:
                await self._refresh_lease()
                self._recovered()
            except _ERRORS as exc:
                self._warn("lease", exc)

    async def _listen(self) -> None:
        """The one cancel subscription of this instance."""
        while True:
            try:
                message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            except _ERRORS as exc:
                self._warn("cancel subscription", exc)
                await asyncio.sleep(RETRY_S)
                continue
            if message and message.get("type") == "message":
                data = message.get("data")
                stream_id = data.decode(errors="replace") if isinstance(data, bytes) else str(data)
                self.on_cancel(stream_id)

    # -- the generating side

    def copy(self, generation: Copied) -> None:
        """Copy ``generation``'s frames to Redis as they come, until its terminal frame."""
        task = self._spawn(self._copy(generation))
        self._copies.add(task)
        task.add_done_callback(self._copies.discard)

    async def _copy(self, generation: Copied) -> None:
        framelog = generation.log
        stream_id = generation.id
        hkey, fkey = hash_key(stream_id), frames_key(stream_id)
        retention = self.settings.resume_retention
        live_ttl_ms = int((retention + self.settings.idle_timeout) * 1000)
        flushed = 0
        trimmed_to = 2
        created = False
        resync = False
        failures = 0
        while True:
            if created and not await framelog.wait(flushed, live_ttl_ms / 3000):
                # Nothing new for a while (a model loading, a long think): keep the keys alive.
                try:
                    pipe = self.client.pipeline(transaction=False)
                    pipe.pexpire(hkey, live_ttl_ms)
                    pipe.pexpire(fkey, live_ttl_ms)
                    await pipe.execute()
                except _ERRORS as exc:
                    self._warn("copy", exc)
                continue
            try:
                if resync:
                    # A failed MULTI applied nothing, but a reply lost after EXEC may hide one that did.
                    top = await self.client.xrevrange(fkey, count=1)
                    if top:
                        flushed = max(flushed, _seq(top[0][0]))
                    created = created or bool(await self.client.exists(hkey))
                    resync = False
                try:
                    batch = framelog.read(flushed)
                except FramesExpired:
                    # Evicted before they could be copied (Redis was slow or away):
                    # a resume from before them gets the same 410 as anywhere.
                    batch = framelog.read(framelog.first_kept - 1)
                if created and not batch.frames:
                    if batch.terminal:
                        return  # a resync found the terminal frame already copied
                    continue
                pipe = self.client.pipeline(transaction=True)
                if not created:
                    # Written as the generation starts, before any frame: by the time
                    # its client has the token, any instance can find the stream.
                    pipe.hset(hkey, mapping={"token": generation.token_hash, "owner": self.instance})
                first_seq = batch.last - len(batch.frames) + 1
                if batch.frames and first_seq == 1:
                    pipe.hset(hkey, "meta", batch.frames[0])
                for offset, frame in enumerate(batch.frames):
                    seq = first_seq + offset
                    fields = {"f": frame, "t": b"1"} if batch.terminal and seq == batch.last else {"f": frame}
                    # Frame 1 (meta) is in the stream too, so a reader waiting for it wakes;
                    # the hash keeps it once trimming takes it from the stream.
                    pipe.xadd(
                        fkey, fields, id=f"{seq}-0", maxlen=self.settings.resume_max_frames + 1, approximate=False
                    )
                first_kept = framelog.first_kept
                if first_kept > trimmed_to:
                    pipe.xtrim(fkey, minid=f"{first_kept}-0", approximate=False)
                state: dict[str, Any] = {"first": first_kept, "last": batch.last}
                state["state"] = "ended" if batch.terminal else "live"
                if batch.terminal:
                    state["outcome"] = generation.outcome or ""
                pipe.hset(hkey, mapping=state)
                ttl_ms = int(retention * 1000) if batch.terminal else live_ttl_ms
                pipe.pexpire(hkey, ttl_ms)
                pipe.pexpire(fkey, ttl_ms)
                await pipe.execute()
            except _ERRORS as exc:
                failures += 1
                generation.record.extra["redis_errors"] = failures
                self._warn("copy", exc)
                ended_at = generation.ended_at
                if ended_at is not None and asyncio.get_running_loop().time() - ended_at > FINAL_COPY_WITHIN_S:
                    log.warning("stream not copied to redis", extra={"stream": stream_id, "redis": self.where})
                    return
                resync = True
                await asyncio.sleep(RETRY_S)
                continue
            self._recovered()
            if not created:
                created = True
                generation.stored.set()
            flushed = max(flushed, batch.last)
            trimmed_to = max(trimmed_to, first_kept)
            if batch.terminal:
                return

    @property
    def available(self) -> bool:
        """False while Redis is known to be failing (a new stream then does not wait for it)."""
        return not self._warned

    async def presence_remaining(self, stream_id: str) -> float:
        """Seconds a follower on another instance still counts as present (0: none)."""
        ttl = int(await self.client.pttl(seen_key(stream_id)))
        return ttl / 1000 if ttl > 0 else 0.0

    # -- any instance

    async def _fields(self, stream_id: str) -> dict[bytes, bytes]:
        try:
            fields: dict[bytes, bytes] = await self.client.hgetall(hash_key(stream_id))
        except _ERRORS as exc:
            self._warn("read", exc)
            raise SourceUnavailable(exc) from None
        return fields

    async def open(self, stream_id: str, token: str) -> RedisSource | None:
        """The stream as stored, if it exists and ``token`` is its token."""
        fields = await self._fields(stream_id)
        stored = fields.get(b"token")
        if not stored or not token_matches(token, stored.decode()):
            return None
        return RedisSource(self, stream_id, fields)

    async def cancel(self, stream_id: str, token: str) -> tuple[int, str] | None:
        """Ask the generating instance to cancel; the status and state to answer, None if unknown."""
        fields = await self._fields(stream_id)
        stored = fields.get(b"token")
        if not stored or not token_matches(token, stored.decode()):
            return None
        if fields.get(b"state") == b"ended":
            return 200, "ended"
        fkey = frames_key(stream_id)
        last = int(fields.get(b"last", b"1"))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CANCEL_WAIT_S
        try:
            await self.client.publish(CANCEL_CHANNEL, stream_id)
            while (remaining := deadline - loop.time()) > 0:
                found = await self.client.xread(
                    {fkey: f"{last}-0"}, count=READ_COUNT, block=max(1, int(remaining * 1000))
                )
                if not found:
                    continue
                entries = found[0][1]
                last = _seq(entries[-1][0])
                if b"t" in entries[-1][1]:
                    outcome = await self.client.hget(hash_key(stream_id), "outcome")
                    return 200, "cancelled" if outcome == b"cancelled" else "ended"
        except _ERRORS as exc:
            self._warn("cancel", exc)
            raise SourceUnavailable(exc) from None
        return 202, "cancelling"


class RedisSource:
    """A stream read from Redis by a follower (on any instance)."""

    local = False

    def __init__(self, streams: RedisStreams, stream_id: str, fields: dict[bytes, bytes]) -> None:
        self.streams = streams
        self.stream_id = stream_id
        self.meta = fields.get(b"meta", b"")  # empty until the first event: then frame 1 comes from the stream
        self.first = int(fields.get(b"first", b"2"))
        self.last = int(fields.get(b"last", b"0"))
        self.ended = fields.get(b"state") == b"ended"
        self.owner = fields.get(b"owner", b"").decode()
        self._key = frames_key(stream_id)
        self._next_refresh = 0.0
        self._loop = asyncio.get_running_loop()

    def check(self, after: int) -> None:
        effective = max(after, 1)
        if effective + 1 < self.first and effective < self.last:
            raise FramesExpired(effective, self.first)

    def finished_after(self, after: int) -> bool:
        return self.ended and after >= self.last

    async def next(self, after: int, within: float) -> Batch:
        if after == 0 and self.meta:
            return Batch([self.meta], 1)
        await self._refresh_if_due()
        if self.finished_after(after):
            return Batch([], after, terminal=True)  # ``after`` lay beyond the end: nothing will come
        block = min(within, max(self._next_refresh - self._loop.time(), 0.001))
        try:
            found = await self.streams.client.xread(
                {self._key: f"{after}-0"}, count=READ_COUNT, block=max(1, int(block * 1000))
            )
        except _ERRORS as exc:
            self.streams._warn("follow", exc)
            raise SourceUnavailable(exc) from None
        if not found:
            return Batch([], after)
        entries = found[0][1]
        frames = [fields[b"f"] for _, fields in entries]
        first = _seq(entries[0][0])
        if after == 0 and first == 2:
            # Meta was trimmed from the stream after this source was opened: the hash keeps it.
            meta = await self.streams.client.hget(hash_key(self.stream_id), "meta")
            if meta:
                frames.insert(0, meta)
                first = 1
        if first > after + 1:
            raise FramesExpired(max(after, 1), first)
        return Batch(frames, _seq(entries[-1][0]), b"t" in entries[-1][1])

    async def _refresh_if_due(self) -> None:
        """Say this follower is here (for the grace window) and check the generating instance is alive."""
        now = self._loop.time()
        if now < self._next_refresh:
            return
        self._next_refresh = now + min(PRESENCE_REFRESH_S, self.streams.settings.heartbeat)
        presence_ms = int((self.streams.settings.resume_grace + 2 * PRESENCE_REFRESH_S) * 1000)
        pipe = self.streams.client.pipeline(transaction=False)
        pipe.set(seen_key(self.stream_id), self.streams.instance, px=presence_ms)
        pipe.hmget(hash_key(self.stream_id), ["state", "last"])
        pipe.exists(instance_key(self.owner))
        try:
            _, (state, last), alive = await pipe.execute()
        except _ERRORS as exc:
            self.streams._warn("follow", exc)
            raise SourceUnavailable(exc) from None
        if state is None:
            raise StreamLost("the stream is no longer kept")
        self.ended = state == b"ended"
        self.last = int(last or b"0")
        if state != b"ended" and not alive:
            raise StreamLost("the instance generating this stream stopped without ending it")

    def attach(self) -> None:
        pass

    def detach(self) -> None:
        """Leaving starts the grace window now: the presence key expires after exactly that long."""
        grace_ms = int(self.streams.settings.resume_grace * 1000)
        client, key = self.streams.client, seen_key(self.stream_id)

        async def leave() -> None:
            try:
                if grace_ms > 0:
                    await client.set(key, self.streams.instance, px=grace_ms)
                else:
                    await client.delete(key)
            except _ERRORS as exc:
                self.streams._warn("presence", exc)

        if self._next_refresh:  # it did say it was here
            self.streams._spawn(leave())
