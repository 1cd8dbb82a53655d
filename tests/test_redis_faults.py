"""Redis under the faults operators meet: a restart that loses everything, a Cluster, a Sentinel failover.

Real servers on loopback (tests/redis_server.py), two instances of the
service each time, the fake Ollama as the model.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from sse.protect import LIMITER
from sse.resume.redis import frames_key, hash_key
from tests.fakes.ollama import FakeOllama
from tests.helpers import Frame, MakeService, Service, StreamRecords, iter_frames, text_of
from tests.realparts import missing
from tests.redis_server import RedisCluster, RedisSentinel, RedisServer, find_redis_cli, find_redis_server
from tests.resumable import (
    ASK,
    DISCONNECT_WAIT,
    WORDS,
    Started,
    assert_whole,
    cancel_elsewhere,
    held_script,
    held_stream,
    read_until,
    resume_headers,
    silent_stream,
    two_instances,
)


def executable() -> str:
    found = find_redis_server()
    if found is None or find_redis_cli() is None:
        missing("redis-server or redis-cli", "`make system-deps` installs them (Debian's redis-server)")
    return found


async def until(check: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
    """Poll a state held by another process (Redis) until it holds; fail after ``within`` s."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {within} s")
        await asyncio.sleep(0.05)


async def stored(redis: Any, stream_id: str) -> bool:
    """The stream's hash is in Redis with its token (what a resume elsewhere needs)."""
    try:
        return bool(await redis.hexists(hash_key(stream_id), "token"))
    except OSError:
        return False
    except Exception as exc:  # redis-py's connection errors while a server restarts
        if type(exc).__module__.startswith("redis"):
            return False
        raise


async def resume_and_finish(
    client: aiohttp.ClientSession, service: Service, started: Started, release: asyncio.Event
) -> list[Frame]:
    """Resume where ``started``'s client left, on ``service``; open ``release`` once following; the whole answer."""
    meta = started.meta
    async with client.get(service.url + meta["resume"]["url"], headers=resume_headers(meta, started.last_id)) as again:
        assert again.status == 200, await again.text()
        frames = iter_frames(again)
        rest = []
        release.set()
        rest += [frame async for frame in frames]
    return started.frames + rest


async def assert_one_clients_stream_limit_is_shared(
    one: Service, other: Service, client: aiohttp.ClientSession, fake_ollama: FakeOllama
) -> None:
    """A client's one stream on ``one`` fills its limit on ``other`` too, through Redis (never a local fallback)."""
    gate = asyncio.Event()
    fake_ollama.push(held_script(WORDS, (5, gate)))
    held = await client.post(one.url + "/api/chat", json=ASK)
    await read_until(iter_frames(held), " w4")
    async with client.post(other.url + "/api/chat", json=ASK) as refused:
        assert refused.status == 429
        assert (await refused.json())["error"]["code"] == "too_many_streams"
    gate.set()
    await held.read()
    assert one.app[LIMITER].fallbacks == 0
    assert other.app[LIMITER].fallbacks == 0


# -- Redis restarts empty


@pytest.fixture
def restartable() -> Iterator[list[RedisServer]]:
    """A redis-server of this test's own (the session's shared one is never restarted)."""
    servers = [RedisServer(executable()).start()]
    yield servers
    servers[-1].stop()


def restart_empty(servers: list[RedisServer]) -> None:
    old = servers[-1]
    old.kill()
    old.stop()
    servers.append(RedisServer(old.executable, port=old.port).start())


async def test_after_redis_restarts_empty_a_silent_live_stream_is_resumable_on_the_other_instance(
    restartable: list[RedisServer], make_service: MakeService, client: aiohttp.ClientSession, fake_ollama: FakeOllama
) -> None:
    url = restartable[0].url
    one, other = await two_instances(make_service, url)
    gate = asyncio.Event()
    first = await held_stream(client, one, fake_ollama, (10, gate))
    meta = first.meta
    restart_empty(restartable)
    # The model is silent meanwhile: no new frame can carry the stream back to Redis.
    async with Redis.from_url(url) as redis:
        await until(lambda: stored(redis, meta["id"]), 20.0, "the stream's rewrite to the new Redis")
        assert await redis.hget(hash_key(meta["id"]), "meta")  # whole: meta and the frames, not just a cursor
    assert_whole(await resume_and_finish(client, other, first, gate))
    # A late reader from the very start gets every frame from the new Redis.
    async with client.get(other.url + meta["resume"]["url"], headers=resume_headers(meta, 0)) as replay:
        assert text_of([frame async for frame in iter_frames(replay)]) == "".join(WORDS)


async def test_after_redis_restarts_empty_a_live_stream_is_cancellable_from_the_other_instance(
    restartable: list[RedisServer], make_service: MakeService, client: aiohttp.ClientSession, fake_ollama: FakeOllama
) -> None:
    url = restartable[0].url
    one, other = await two_instances(make_service, url)
    records = StreamRecords(one.app)
    started = await silent_stream(client, one, fake_ollama)
    restart_empty(restartable)
    async with Redis.from_url(url) as redis:
        await until(lambda: stored(redis, started.meta["id"]), 20.0, "the stream's rewrite to the new Redis")
    await cancel_elsewhere(client, other, started.meta)
    await asyncio.wait_for(started.upstream.disconnected.wait(), DISCONNECT_WAIT)
    assert (await records.next())["outcome"] == "cancelled"


# -- Redis Cluster


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisCluster]:
    started = RedisCluster(executable()).start()
    yield started
    started.stop()


async def test_on_a_redis_cluster_a_stream_resumes_and_cancels_on_the_other_instance(
    cluster: RedisCluster, make_service: MakeService, client: aiohttp.ClientSession, fake_ollama: FakeOllama
) -> None:
    one, other = await two_instances(make_service, cluster.url)
    gate = asyncio.Event()
    first = await held_stream(client, one, fake_ollama, (10, gate))
    assert_whole(await resume_and_finish(client, other, first, gate))

    records = StreamRecords(one.app)
    started = await silent_stream(client, one, fake_ollama)
    await cancel_elsewhere(client, other, started.meta)
    await asyncio.wait_for(started.upstream.disconnected.wait(), DISCONNECT_WAIT)
    assert (await records.next())["outcome"] == "cancelled"


async def test_on_a_redis_cluster_two_instances_share_one_clients_stream_limit(
    cluster: RedisCluster, make_service: MakeService, client: aiohttp.ClientSession, fake_ollama: FakeOllama
) -> None:
    one, other = await two_instances(make_service, cluster.url, max_streams_per_client=1, resumable=False)
    await assert_one_clients_stream_limit_is_shared(one, other, client, fake_ollama)


# -- Sentinel


@pytest.fixture
def sentinel() -> Iterator[RedisSentinel]:
    started = RedisSentinel(executable()).start()
    yield started
    started.stop()


async def test_when_the_sentinel_primary_dies_mid_stream_the_stream_finishes_resumable_on_the_new_primary(
    sentinel: RedisSentinel, make_service: MakeService, client: aiohttp.ClientSession, fake_ollama: FakeOllama
) -> None:
    one, other = await two_instances(make_service, sentinel.url)
    during, after = asyncio.Event(), asyncio.Event()
    first = await held_stream(client, one, fake_ollama, (10, during), (20, after))
    sentinel.primary.kill()
    during.set()  # the model goes on while Redis fails over
    await asyncio.to_thread(sentinel.wait_failover)
    async with Redis(host="127.0.0.1", port=sentinel.replica.port) as promoted:
        await until(
            lambda: _has_text(promoted, first.meta["id"], b" w19"), 30.0, "frames after the failover on the new primary"
        )
    assert_whole(await resume_and_finish(client, other, first, after))


async def _has_text(redis: Any, stream_id: str, text: bytes) -> bool:
    """The stream's newest frame in Redis carries ``text`` (the model's last word before the gate)."""
    try:
        newest = await redis.xrevrange(frames_key(stream_id), count=1)
    except Exception as exc:
        if type(exc).__module__.startswith("redis") or isinstance(exc, OSError):
            return False
        raise
    return bool(newest) and text in newest[0][1][b"f"]


async def test_with_sentinel_two_instances_share_one_clients_stream_limit(
    sentinel: RedisSentinel, make_service: MakeService, client: aiohttp.ClientSession, fake_ollama: FakeOllama
) -> None:
    one, other = await two_instances(make_service, sentinel.url, max_streams_per_client=1, resumable=False)
    await assert_one_clients_stream_limit_is_shared(one, other, client, fake_ollama)
