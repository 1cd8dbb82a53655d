"""Resumable streams shared through Redis, so a client can resume on any instance.

Used when ``REDIS_URL`` is set (the ``redis`` extra).  The generating instance
keeps its frame log in memory as always and copies it to Redis; any instance
can then replay and follow the stream, and cancel it.

Keys (``ID`` is the stream id, ``INSTANCE`` an instance's; the braces are
hash tags, so a stream's keys share one hash slot of a Redis Cluster):

* ``llm-sse:stream:{ID}`` -- a hash: ``token`` (the resume token's SHA-256,
  never the token), ``owner`` (the generating instance), ``meta`` (frame 1,
  kept apart so trimming never drops it), ``first``/``last`` (the oldest
  frame kept and the newest written), ``state`` (``live``/``ended``) and
  ``outcome``;
* ``llm-sse:frames:{ID}`` -- a Redis Stream of frames 1..n, entry id
  ``{n}-0``, field ``f`` the frame's bytes and ``t`` on the terminal frame,
  trimmed to the generating log's bounds;
* ``llm-sse:seen:{ID}`` -- a follower on another instance was here: set with
  an expiry of the grace window, refreshed while it follows;
* ``llm-sse:instance:{INSTANCE}`` -- the instance is alive (a lease refreshed
  every 5 s, expiring after 15 s), so a follower elsewhere notices a crash;
* ``llm-sse:cancel:{INSTANCE}`` -- a Redis Stream of stream ids to cancel,
  which that instance reads with ``XREAD BLOCK`` (not pub/sub: it works on a
  Cluster, and a cancel sent while the instance's connection is down waits
  for it instead of being lost).

Writes are batched: the copy is a reader of the log, and each wake-up writes
everything new in one Lua script, never a round trip per token.  The script
appends only if the hash still holds this stream's token and the newest frame
the copy wrote: after Redis restarted empty, or failed over to a replica that
missed the last writes, the copy rewrites the stream whole (hash and every
frame the log still holds) instead of appending to nothing.  The same check
runs for every stream of this instance as soon as Redis answers again after
an outage, or when this instance's lease was found missing, so a stream that
is silent (a model thinking) is resumable everywhere again at once, not at
its next token.  Both keys expire ``resume_retention`` seconds after the
stream ended (while it is live, after ``resume_retention + idle_timeout``
without a write, which a live stream never reaches).

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
# Most frames one write script carries (a whole rewrite of a long stream is several).
WRITE_FRAMES = 256
# Cancels waiting for an instance: its cancel stream keeps about this many.
CANCEL_KEEP = 256

_ERRORS = (RedisError, OSError, TimeoutError)

# KEYS: the stream's hash, its frames.
# ARGV: mode ("reset": write the stream anew; "append": only if the hash still has
#       this token and ``last``), token hash, owner, expected last, first kept, last,
#       state, outcome, ttl ms, then per frame: seq, bytes, "1" if terminal else "0".
# Returns 1, or 0 when an append found the stream lost (Redis restarted empty,
# or a failover lost the latest writes): the caller then resets it.
_WRITE = """
if ARGV[1] == 'append' then
  local stored = redis.call('HMGET', KEYS[1], 'token', 'last')
  if stored[1] ~= ARGV[2] or stored[2] ~= ARGV[4] then
    return 0
  end
else
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('HSET', KEYS[1], 'token', ARGV[2], 'owner', ARGV[3])
end
for i = 10, #ARGV, 3 do
  if ARGV[i] == '1' then
    redis.call('HSET', KEYS[1], 'meta', ARGV[i + 1])
  end
  if ARGV[i + 2] == '1' then
    redis.call('XADD', KEYS[2], ARGV[i] .. '-0', 'f', ARGV[i + 1], 't', '1')
  else
    redis.call('XADD', KEYS[2], ARGV[i] .. '-0', 'f', ARGV[i + 1])
  end
end
if tonumber(ARGV[5]) > 2 then
  redis.call('XTRIM', KEYS[2], 'MINID', ARGV[5] .. '-0')
end
redis.call('HSET', KEYS[1], 'first', ARGV[5], 'last', ARGV[6], 'state', ARGV[7])
if ARGV[8] ~= '' then
  redis.call('HSET', KEYS[1], 'outcome', ARGV[8])
end
redis.call('PEXPIRE', KEYS[1], ARGV[9])
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('PEXPIRE', KEYS[2], ARGV[9])
end
return 1
"""


def hash_key(stream_id: str) -> str:
    return f"{PREFIX}stream:{{{stream_id}}}"


def frames_key(stream_id: str) -> str:
    return f"{PREFIX}frames:{{{stream_id}}}"


def seen_key(stream_id: str) -> str:
    return f"{PREFIX}seen:{{{stream_id}}}"


def instance_key(instance: str) -> str:
    return f"{PREFIX}instance:{{{instance}}}"


def cancel_key(instance: str) -> str:
    return f"{PREFIX}cancel:{{{instance}}}"


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


class _Copy:
    """One generation's copy in Redis: how far it is written, and a lock so writes never interleave."""

    def __init__(self, generation: Copied) -> None:
        self.generation = generation
        self.written = False  # the hash exists (as far as this instance knows)
        self.flushed = 0  # the newest frame written
        self.ended = False  # the terminal frame is written
        self.lock = asyncio.Lock()


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
        self._write_script: Any = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._copies: dict[str, _Copy] = {}
        self._copying: set[asyncio.Task[Any]] = set()
        self._warned = False
        self._checking: asyncio.Task[Any] | None = None
        self._recheck = False

    # -- life

    async def start(self) -> None:
        """Connect, or -- if Redis does not answer -- go on without it and keep trying.

        An outage at start-up is treated like one later: this instance serves
        resumable streams from its own memory (resumes on another instance get
        503 ``resume_unavailable``) until Redis answers, as the limits do.
        """
        self._write_script = self.client.register_script(_WRITE)
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
        if self._copying:
            await asyncio.wait(list(self._copying), timeout=CLOSE_WAIT_S)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5.0)
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
            # Redis may have come back empty (a restart) or as a replica that
            # missed the latest writes (a failover): check every stream now.
            self._check_streams()

    async def _refresh_lease(self) -> bool:
        """Renew this instance's lease; False if Redis had lost it (restarted empty, or it expired)."""
        previous = await self.client.set(instance_key(self.instance), b"1", px=int(LEASE_S * 1000), get=True)
        return previous is not None

    async def _keep_lease(self) -> None:
        while True:
            await asyncio.sleep(LEASE_REFRESH_S)
            try:
                kept = await self._refresh_lease()
            except _ERRORS as exc:
                self._warn("lease", exc)
                continue
            self._recovered()
            if not kept:
                self._check_streams()

    async def _listen(self) -> None:
        """Read this instance's cancel stream: ids of streams to cancel, sent by any instance."""
        key = cancel_key(self.instance)
        last = "0-0"
        while True:
            try:
                found = await self.client.xread({key: last}, count=64, block=1000)
            except _ERRORS as exc:
                self._warn("cancel stream", exc)
                await asyncio.sleep(RETRY_S)
                continue
            self._recovered()
            for _, entries in found or ():
                for entry_id, fields in entries:
                    last = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
                    data = fields.get(b"id", b"")
                    self.on_cancel(data.decode(errors="replace") if isinstance(data, bytes) else str(data))

    # -- the generating side

    def copy(self, generation: Copied) -> None:
        """Copy ``generation``'s frames to Redis as they come, until its terminal frame."""
        copy = self._copies[generation.id] = _Copy(generation)
        task = self._spawn(self._copy(copy))
        self._copying.add(task)
        task.add_done_callback(self._copying.discard)

    def forget(self, stream_id: str) -> None:
        """This instance no longer holds the stream (its retention passed): it is not rewritten any more."""
        self._copies.pop(stream_id, None)

    async def _copy(self, copy: _Copy) -> None:
        generation = copy.generation
        framelog = generation.log
        live_ttl_ms = int((self.settings.resume_retention + self.settings.idle_timeout) * 1000)
        failures = 0
        while True:
            if copy.written and not await framelog.wait(copy.flushed, live_ttl_ms / 3000):
                # Nothing new for a while (a model loading, a long think): keep the keys alive.
                try:
                    pipe = self.client.pipeline(transaction=False)
                    pipe.pexpire(hash_key(generation.id), live_ttl_ms)
                    pipe.pexpire(frames_key(generation.id), live_ttl_ms)
                    await pipe.execute()
                except _ERRORS as exc:
                    self._warn("copy", exc)
                continue
            try:
                async with copy.lock:
                    await self._write(copy)
            except _ERRORS as exc:
                failures += 1
                generation.record.extra["redis_errors"] = failures
                self._warn("copy", exc)
                ended_at = generation.ended_at
                if ended_at is not None and asyncio.get_running_loop().time() - ended_at > FINAL_COPY_WITHIN_S:
                    log.warning("stream not copied to redis", extra={"stream": generation.id, "redis": self.where})
                    return
                await asyncio.sleep(RETRY_S)
                continue
            self._recovered()
            generation.stored.set()
            if copy.ended:
                return

    async def _write(self, copy: _Copy, *, whole: bool = False) -> None:
        """Write what the log holds beyond ``copy.flushed`` (all of it if ``whole`` or the stream was lost)."""
        if whole or not copy.written or not await self._append(copy):
            await self._reset(copy)

    async def _append(self, copy: _Copy) -> bool:
        framelog = copy.generation.log
        try:
            batch = framelog.read(copy.flushed)
        except FramesExpired:
            # Evicted before they could be copied (Redis was slow or away): a resume
            # from before them gets the same 410 as anywhere.
            batch = framelog.read(framelog.first_kept - 1)
        first_seq = batch.last - len(batch.frames) + 1
        return await self._send(copy, "append", list(enumerate(batch.frames, first_seq)), batch.terminal)

    async def _reset(self, copy: _Copy) -> None:
        """Write the stream anew: its hash, and every frame the log still holds."""
        framelog = copy.generation.log
        frames: list[tuple[int, bytes]] = [(1, framelog.head)] if framelog.head is not None else []
        batch = framelog.read(framelog.first_kept - 1)
        frames += enumerate(batch.frames, batch.last - len(batch.frames) + 1)
        if copy.written:
            log.info("stream rewritten to redis", extra={"stream": copy.generation.id, "redis": self.where})
        await self._send(copy, "reset", frames, batch.terminal)

    async def _send(self, copy: _Copy, mode: str, frames: list[tuple[int, bytes]], terminal: bool) -> bool:
        """Run the write script, ``WRITE_FRAMES`` at a time; False if an append found the stream lost."""
        generation = copy.generation
        framelog = generation.log
        keys = [hash_key(generation.id), frames_key(generation.id)]
        retention_ms = int(self.settings.resume_retention * 1000)
        if terminal and generation.ended_at is not None:
            # A rewrite after the end keeps the retention the stream had left.
            elapsed = asyncio.get_running_loop().time() - generation.ended_at
            retention_ms = max(1000, int((self.settings.resume_retention - elapsed) * 1000))
        live_ttl_ms = int((self.settings.resume_retention + self.settings.idle_timeout) * 1000)
        start = 0
        while True:
            part = frames[start : start + WRITE_FRAMES]
            start += WRITE_FRAMES
            final = start >= len(frames)
            last = part[-1][0] if part else copy.flushed
            ends = terminal and final
            args: list[Any] = [
                mode,
                generation.token_hash,
                self.instance,
                copy.flushed,
                framelog.first_kept,
                last,
                "ended" if ends else "live",
                (generation.outcome or "") if ends else "",
                retention_ms if ends else live_ttl_ms,
            ]
            for seq, frame in part:
                args += [seq, frame, "1" if ends and seq == last else "0"]
            if not await self._write_script(keys=keys, args=args):
                return False
            copy.written = True
            copy.flushed = last
            copy.ended = ends
            if final:
                return True
            mode = "append"

    def _check_streams(self) -> None:
        """Check (soon, once at a time) that Redis still holds every stream of this instance as written."""
        if self._checking is not None and not self._checking.done():
            self._recheck = True
            return
        self._checking = self._spawn(self._check_all())

    async def _check_all(self) -> None:
        while True:
            self._recheck = False
            try:
                # First the lease: a follower elsewhere takes a missing one for a dead instance.
                await self._refresh_lease()
            except _ERRORS as exc:
                self._warn("check", exc)
                return
            for copy in list(self._copies.values()):
                try:
                    async with copy.lock:
                        if not copy.written:
                            continue  # its copy task writes it whole anyway
                        generation = copy.generation
                        token, last = await self.client.hmget(hash_key(generation.id), ["token", "last"])
                        if token != generation.token_hash.encode() or int(last or 0) != copy.flushed:
                            await self._write(copy, whole=True)
                except _ERRORS as exc:
                    self._warn("check", exc)
                    return  # the next recovery checks again
            if not self._recheck:
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
        owner = fields.get(b"owner", b"").decode()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CANCEL_WAIT_S
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.xadd(cancel_key(owner), {"id": stream_id}, maxlen=CANCEL_KEEP, approximate=True)
            pipe.pexpire(cancel_key(owner), int(LEASE_S * 1000))
            await pipe.execute()
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
