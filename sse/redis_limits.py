"""Limits shared by every instance, in Redis (``REDIS_URL``).

Each decision is one Lua script, so it is atomic across instances: read the
client's bucket, purge expired leases, check both stream caps, and only if
all pass take the token and record the lease.  The script reads Redis's own
clock (``TIME``), so instances whose clocks disagree still share one bucket.

Keys (prefix ``llm-sse:{limits}:``; the hash tag puts them all in one slot of
a Redis Cluster, because one admission reads a client's keys and the global
count together, atomically):

* ``bucket:<client>`` -- a hash ``{tokens, ts}``, expiring once it would be full;
* ``streams:<client>`` and ``streams`` -- sorted sets of stream ids scored by
  their lease's expiry (ms).  A live stream refreshes its lease every third of
  ``lease_seconds``; a crashed instance's streams stop being refreshed and
  are purged by the next admission after their lease runs out.

Every call is bounded by ``timeout``; any failure becomes ``SharedUnavailable``
and ``StreamLimiter`` limits locally meanwhile.  Needs the ``redis`` extra.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from .limits import Limits, SharedUnavailable, rate_limited, server_busy, too_many_streams
from .redis_client import PREFIX

# One hash tag for every limits key: an admission reads a client's keys and the
# global count in one script, so on a Redis Cluster they must share a slot.
LIMITS_PREFIX = PREFIX + "{limits}:"

# KEYS: bucket, client's streams, all streams.
# ARGV: tokens per ms, capacity, streams per client, streams, lease ms, stream id.
# Returns {verdict, retry_ms}: verdict "ok", "rate", "client" or "busy".
_ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local per_client = tonumber(ARGV[3])
local total = tonumber(ARGV[4])
local lease = tonumber(ARGV[5])
local level = capacity
if rate > 0 then
  local bucket = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
  if bucket[1] then
    local elapsed = math.max(0, now - tonumber(bucket[2]))
    level = math.min(capacity, tonumber(bucket[1]) + elapsed * rate)
  end
  if level < 1 then
    return {'rate', math.ceil((1 - level) / rate)}
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if per_client > 0 and redis.call('ZCARD', KEYS[2]) >= per_client then
  return {'client', 0}
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
if total > 0 and redis.call('ZCARD', KEYS[3]) >= total then
  return {'busy', 0}
end
if rate > 0 then
  redis.call('HSET', KEYS[1], 'tokens', tostring(level - 1), 'ts', now)
  redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - level + 1) / rate) + 1000)
end
redis.call('ZADD', KEYS[2], now + lease, ARGV[6])
redis.call('PEXPIRE', KEYS[2], lease)
redis.call('ZADD', KEYS[3], now + lease, ARGV[6])
redis.call('PEXPIRE', KEYS[3], lease)
return {'ok', 0}
"""

# KEYS: client's streams, all streams.  ARGV: lease ms, stream id.
# Re-adds a lease that expired meanwhile (Redis was away): the stream is alive.
_REFRESH = """
local t = redis.call('TIME')
local expiry = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
for i = 1, 2 do
  redis.call('ZADD', KEYS[i], expiry, ARGV[2])
  if redis.call('PTTL', KEYS[i]) < tonumber(ARGV[1]) then
    redis.call('PEXPIRE', KEYS[i], ARGV[1])
  end
end
return 1
"""

_RELEASE = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
"""


def streams_key(client: str | None = None) -> str:
    return f"{LIMITS_PREFIX}streams:{client}" if client is not None else f"{LIMITS_PREFIX}streams"


def bucket_key(client: str) -> str:
    return f"{LIMITS_PREFIX}bucket:{client}"


class RedisBackend:
    """A ``limits.Backend`` in Redis; see the module's docstring for the keys."""

    name = "redis"
    refreshes = True

    def __init__(self, client: Any, limits: Limits, *, timeout: float) -> None:
        """``client`` is the application's one client for the URL (``redis_client.RedisClients``)."""
        self.limits = limits
        self.timeout = timeout
        self._redis = client
        self._admit = self._redis.register_script(_ADMIT)
        self._refresh = self._redis.register_script(_REFRESH)
        self._release = self._redis.register_script(_RELEASE)
        self._lease_ms = max(1, round(limits.lease_seconds * 1000))

    async def admit(self, client: str, stream_id: str) -> None:
        limits = self.limits
        verdict, retry_ms = await self._call(
            self._admit,
            [bucket_key(client), streams_key(client), streams_key()],
            [
                repr(limits.rate_per_minute / 60_000),
                repr(limits.capacity),
                limits.streams_per_client,
                limits.streams,
                self._lease_ms,
                stream_id,
            ],
        )
        verdict = verdict.decode() if isinstance(verdict, bytes) else str(verdict)
        if verdict == "rate":
            raise rate_limited(limits, int(retry_ms) / 1000)
        if verdict == "client":
            raise too_many_streams(limits)
        if verdict == "busy":
            raise server_busy(limits)

    async def refresh(self, client: str, stream_id: str) -> None:
        await self._call(self._refresh, [streams_key(client), streams_key()], [self._lease_ms, stream_id])

    async def release(self, client: str, stream_id: str) -> None:
        await self._call(self._release, [streams_key(client), streams_key()], [stream_id])

    async def ping(self) -> None:
        await self._call_command("PING")

    async def close(self) -> None:
        """Nothing to release: the client is the application's, closed with it."""

    async def _call_command(self, *args: Any) -> Any:
        return await self._bounded(self._redis.execute_command(*args))

    async def _call(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        return await self._bounded(script(keys=keys, args=args))

    async def _bounded(self, call: Awaitable[Any]) -> Any:
        """One Redis call within ``timeout``; any failure is ``SharedUnavailable``."""
        from redis.exceptions import RedisError

        try:
            async with asyncio.timeout(self.timeout):
                return await call
        except TimeoutError:
            raise SharedUnavailable(f"Redis did not answer within {self.timeout:g} s") from None
        except (RedisError, OSError) as exc:
            raise SharedUnavailable(f"Redis failed: {exc}") from None
