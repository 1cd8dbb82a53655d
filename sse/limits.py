"""Who may start a stream now: a token bucket per client and caps on open streams.

Three limits protect one GPU from being held by one client, or by everyone at
once:

* a **token bucket** per client: ``rate_per_minute`` requests a minute on
  average, ``burst`` at once; over it, 429 ``rate_limited`` with the exact
  time until the next token;
* **open streams per client**: over it, 429 ``too_many_streams``;
* **open streams in all**: over it, 503 ``server_busy`` -- not the client's
  fault, so not a 4xx.

Admission is all or nothing: a request that is refused takes no token and
holds no slot, so a client that retries politely is not punished for the
server being busy.  The slot is a *lease* that the caller releases when the
stream ends, whatever the ending.

Backends: ``MemoryBackend`` (this module) counts in the process;
``sse.redis_limits.RedisBackend`` shares the counts between instances.
``StreamLimiter`` puts a backend behind one ``async with`` and, when the
shared backend cannot be reached, keeps limiting with the local one (see
docs/decisions.md: "Unreachable Redis: limit locally, do not fail closed").
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from .errors import ApiError
from .idle import IdleSignal

log = logging.getLogger("llm_sse.limits")

# A slot frees when some stream ends; streams last seconds to a minute, so a
# client is told to come back in a few seconds rather than hammer at once.
BUSY_RETRY_AFTER = 5.0


@dataclass(frozen=True, slots=True)
class Limits:
    """The limits from the settings; 0 turns a limit off."""

    rate_per_minute: float = 20.0
    burst: int = 5
    streams_per_client: int = 2
    streams: int = 8
    lease_seconds: float = 30.0

    @property
    def enabled(self) -> bool:
        return bool(self.rate_per_minute or self.streams_per_client or self.streams)

    @property
    def capacity(self) -> float:
        """The bucket's size: at least one token, or no request would ever pass."""
        return float(max(1, self.burst))


# -- refusals


class RateLimited(ApiError):
    status = 429
    code = "rate_limited"


class TooManyStreams(ApiError):
    status = 429
    code = "too_many_streams"


class ServerBusy(ApiError):
    status = 503
    code = "server_busy"


def rate_limited(limits: Limits, retry_after: float) -> RateLimited:
    return RateLimited(
        f"too many requests: the limit is {limits.rate_per_minute:g} a minute (bursts of {limits.burst:g}); "
        f"try again in {math.ceil(retry_after)} s",
        retry_after=retry_after,
    )


def too_many_streams(limits: Limits) -> TooManyStreams:
    return TooManyStreams(
        f"you already have {limits.streams_per_client} answers streaming; wait for one to finish",
        retry_after=BUSY_RETRY_AFTER,
    )


def server_busy(limits: Limits) -> ServerBusy:
    return ServerBusy(
        f"the server is answering as many requests as it can ({limits.streams}); try again shortly",
        retry_after=BUSY_RETRY_AFTER,
    )


# -- the token bucket


@dataclass(slots=True)
class TokenBucket:
    """``tokens`` at time ``stamp``; refilled lazily, at ``rate`` tokens a second."""

    tokens: float
    stamp: float

    def level(self, now: float, rate: float, capacity: float) -> float:
        """The tokens the bucket holds at ``now`` (a clock that went backwards adds none)."""
        return min(capacity, self.tokens + max(0.0, now - self.stamp) * rate)

    def take(self, now: float, rate: float, capacity: float) -> float:
        """Take one token; return 0.0, or the seconds until one is there (taking nothing)."""
        level = self.level(now, rate, capacity)
        if level < 1.0:
            return (1.0 - level) / rate
        self.tokens, self.stamp = level - 1.0, now
        return 0.0

    def full_at(self, rate: float, capacity: float) -> float:
        """When the bucket is full again: from then on it is the same as no bucket."""
        return self.stamp + (capacity - self.tokens) / rate


# -- backends


class Backend(Protocol):
    """Where the counts live.  ``admit`` raises a refusal or records a lease."""

    name: str
    #: Leases that expire unless refreshed (shared backends: a crashed
    #: instance's streams must not count for ever).
    refreshes: bool

    async def admit(self, client: str, stream_id: str) -> None: ...

    async def refresh(self, client: str, stream_id: str) -> None: ...

    async def release(self, client: str, stream_id: str) -> None: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


class MemoryBackend:
    """Counts in this process.  Memory is bounded by the clients of the last minute or so.

    A bucket that has refilled is the same as no bucket, so buckets are
    dropped once full; stream sets are dropped once empty.
    """

    name = "memory"
    refreshes = False

    def __init__(self, limits: Limits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._rate = limits.rate_per_minute / 60.0
        self._buckets: dict[str, TokenBucket] = {}
        self._streams: dict[str, set[str]] = {}
        self._open = 0
        self._next_sweep = clock()

    @property
    def open_streams(self) -> int:
        return self._open

    def streams_of(self, client: str) -> int:
        return len(self._streams.get(client, ()))

    @property
    def tracked_clients(self) -> int:
        return len(self._buckets)

    async def admit(self, client: str, stream_id: str) -> None:
        self.admit_now(client, stream_id)

    def admit_now(self, client: str, stream_id: str) -> None:
        limits, now = self.limits, self._clock()
        capacity = limits.capacity
        bucket = None
        if self._rate > 0:
            self._sweep(now)
            bucket = self._buckets.get(client) or TokenBucket(capacity, now)
            if bucket.level(now, self._rate, capacity) < 1.0:
                raise rate_limited(limits, bucket.take(now, self._rate, capacity))
        streams = self._streams.get(client, set())
        if limits.streams_per_client and len(streams) >= limits.streams_per_client:
            raise too_many_streams(limits)
        if limits.streams and self._open >= limits.streams:
            raise server_busy(limits)
        if bucket is not None:
            bucket.take(now, self._rate, capacity)
            self._buckets[client] = bucket
        streams.add(stream_id)
        self._streams[client] = streams
        self._open += 1

    async def refresh(self, client: str, stream_id: str) -> None:
        return None

    async def release(self, client: str, stream_id: str) -> None:
        self.release_now(client, stream_id)

    def release_now(self, client: str, stream_id: str) -> None:
        streams = self._streams.get(client)
        if streams is None or stream_id not in streams:
            return
        streams.discard(stream_id)
        self._open -= 1
        if not streams:
            del self._streams[client]

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def _sweep(self, now: float) -> None:
        """Forget full buckets, at most once per refill period (amortised O(1) per admit)."""
        if now < self._next_sweep:
            return
        capacity = self.limits.capacity
        self._buckets = {
            client: bucket for client, bucket in self._buckets.items() if bucket.full_at(self._rate, capacity) > now
        }
        self._next_sweep = now + capacity / self._rate


# -- the limiter the handler uses


@dataclass(slots=True)
class _Lease:
    backend: Backend
    client: str
    stream_id: str
    refresher: asyncio.Task[None] | None = field(default=None)


class SharedUnavailable(Exception):
    """The shared backend could not answer (down, timed out, refused)."""


class StreamLimiter:
    """Admit a stream, hold its slot while it lives, release it however it ends.

    With a ``shared`` backend, its failures (``SharedUnavailable``) make the
    limiter fall back to the ``local`` one for ``retry_shared_after`` seconds
    before trying the shared one again; the switch is logged both ways.
    """

    def __init__(
        self,
        limits: Limits,
        local: MemoryBackend,
        shared: Backend | None = None,
        *,
        retry_shared_after: float = 5.0,
        release_timeout: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = limits
        self.local = local
        self.shared = shared
        self.retry_shared_after = retry_shared_after
        self.release_timeout = release_timeout
        self._clock = clock
        self._shared_failed_at: float | None = None
        self.fallbacks = 0  # admissions decided locally because the shared backend failed
        self.held = 0  # slots this process holds now, whichever backend counts them
        self.refusals: Counter[str] = Counter()  # refused admissions, by code
        self._idle = IdleSignal()

    def stats(self) -> dict[str, Any]:
        """For /healthz: what the limiter holds and has refused since start."""
        return {
            "backend": self.state,
            "held": self.held,
            "refused": dict(self.refusals),
            "fallbacks": self.fallbacks,
        }

    @property
    def state(self) -> str:
        """For /readyz: where the counts live now."""
        if self.shared is None:
            return self.local.name
        if self._shared_failed_at is not None:
            return f"{self.local.name} ({self.shared.name} unreachable)"
        return self.shared.name

    @asynccontextmanager
    async def stream(self, client: str, stream_id: str) -> AsyncIterator[None]:
        """Hold a slot for the body of the ``async with``; raise a refusal if there is none."""
        if not self.limits.enabled:
            yield
            return
        try:
            lease = await self._admit(client, stream_id)
        except ApiError as refusal:
            self.refusals[refusal.code] += 1
            raise
        self.held += 1
        self._idle.busy()
        try:
            yield
        finally:
            try:
                await self._release(lease)
            finally:
                self.held -= 1
                if not self.held:
                    self._idle.idle()

    async def wait_idle(self, within: float) -> bool:
        """Wait until this process holds no slot; False if ``within`` seconds passed first."""
        return await self._idle.wait(within)

    async def check(self) -> None:
        """At start-up: say where the counts live, and whether the shared backend answers."""
        if self.shared is None:
            log.info("limits", extra={"backend": self.local.name, "enabled": self.limits.enabled})
            return
        try:
            await self.shared.ping()
        except SharedUnavailable as exc:
            self._shared_failed(exc)
        else:
            log.info("limits", extra={"backend": self.shared.name, "enabled": self.limits.enabled})

    async def close(self) -> None:
        if self.shared is not None:
            await self.shared.close()

    async def _admit(self, client: str, stream_id: str) -> _Lease:
        shared = self._usable_shared()
        if shared is not None:
            try:
                await shared.admit(client, stream_id)
            except SharedUnavailable as exc:
                self._shared_failed(exc)
            except ApiError:  # a refusal is an answer: the shared backend works
                self._shared_answered()
                raise
            else:
                self._shared_answered()
                lease = _Lease(shared, client, stream_id)
                if shared.refreshes:
                    lease.refresher = asyncio.create_task(self._keep_alive(lease))
                return lease
        if self.shared is not None:
            self.fallbacks += 1
        self.local.admit_now(client, stream_id)
        return _Lease(self.local, client, stream_id)

    async def _release(self, lease: _Lease) -> None:
        if lease.refresher is not None:
            lease.refresher.cancel()
            await asyncio.wait((lease.refresher,))
        if lease.backend is self.local:
            self.local.release_now(lease.client, lease.stream_id)
            return
        try:
            async with asyncio.timeout(self.release_timeout):
                await lease.backend.release(lease.client, lease.stream_id)
        except (SharedUnavailable, TimeoutError) as exc:
            # The lease expires on its own; until then the slot stays taken.
            log.warning(
                "could not release a stream slot; it frees when its lease expires",
                extra={"backend": lease.backend.name, "why": str(exc) or type(exc).__name__},
            )

    async def _keep_alive(self, lease: _Lease) -> None:
        """Refresh the lease while the stream lives: one timer per third of a lease."""
        period = self.limits.lease_seconds / 3
        while True:
            await asyncio.sleep(period)
            try:
                await lease.backend.refresh(lease.client, lease.stream_id)
            except SharedUnavailable as exc:
                log.warning(
                    "could not refresh a stream's lease", extra={"backend": lease.backend.name, "why": str(exc)}
                )

    def _usable_shared(self) -> Backend | None:
        if self.shared is None:
            return None
        failed_at = self._shared_failed_at
        if failed_at is not None and self._clock() < failed_at + self.retry_shared_after:
            return None
        return self.shared

    def _shared_failed(self, exc: Exception) -> None:
        assert self.shared is not None
        if self._shared_failed_at is None:
            log.warning(
                "shared limits unreachable; limiting in this process only",
                extra={"backend": self.shared.name, "why": str(exc), "retry_s": self.retry_shared_after},
            )
        self._shared_failed_at = self._clock()

    def _shared_answered(self) -> None:
        if self._shared_failed_at is not None:
            assert self.shared is not None
            log.info("shared limits reachable again", extra={"backend": self.shared.name})
            self._shared_failed_at = None
