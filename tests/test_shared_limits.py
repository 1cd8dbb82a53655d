"""Limits shared through a real redis-server: several instances, crashes, and Redis going away."""

from __future__ import annotations

import asyncio
import logging
import signal
import time

import redis.asyncio

from sse.protect import LIMITER
from sse.redis_limits import bucket_key, streams_key
from sse.settings import Settings
from tests.conftest import NO_LIMITS
from tests.fakes.ollama import Hang, Script, token_lines
from tests.helpers import iter_frames, start_service
from tests.process import ServiceProcess
from tests.redis_server import RedisServer, find_redis_server, free_port
from tests.test_limits import CHAT, error_of, hold_stream

ME = "ip:127.0.0.1"


async def two_instances(fake_ollama, redis_url: str, **limits):
    """Two services, as two processes behind one load balancer would be, sharing one Redis."""
    values = {"provider": "ollama", "ollama_url": fake_ollama.url, "port": 0, **NO_LIMITS, **limits}
    settings = Settings(redis_url=redis_url, **values)
    return await start_service(settings), await start_service(settings)


async def test_two_instances_share_one_clients_stream_limit(fake_ollama, client, redis_url):
    a, b = await two_instances(fake_ollama, redis_url, max_streams_per_client=1)
    try:
        held, gate = await hold_stream(client, a.url, fake_ollama)
        async with client.post(b.url + "/api/chat", json=CHAT) as response:
            assert response.status == 429
            assert (await error_of(response))["code"] == "too_many_streams"
        gate.set()
        await held.read()
        assert await a.app[LIMITER].wait_idle(10)
        async with client.post(b.url + "/api/chat", json=CHAT) as response:
            assert response.status == 200
            await response.read()
    finally:
        await a.stop()
        await b.stop()


async def test_two_instances_share_one_bucket(fake_ollama, client, redis_url):
    a, b = await two_instances(fake_ollama, redis_url, rate_per_minute=1, rate_burst=2)
    try:
        for service in (a, b):
            async with client.post(service.url + "/api/chat", json=CHAT) as response:
                assert response.status == 200
                await response.read()
        async with client.post(a.url + "/api/chat", json=CHAT) as response:
            assert response.status == 429
            assert (await error_of(response))["code"] == "rate_limited"
        async with redis.asyncio.Redis.from_url(redis_url) as shared:
            # The bucket expires once it would be full again: no key lives for ever.
            assert 0 < await shared.pttl(bucket_key(ME)) <= 121_000
    finally:
        await a.stop()
        await b.stop()


async def test_two_instances_share_the_global_stream_cap(fake_ollama, client, redis_url):
    a, b = await two_instances(fake_ollama, redis_url, max_streams=1, trusted_proxies="127.0.0.1")
    try:
        held, gate = await hold_stream(client, a.url, fake_ollama, {"X-Forwarded-For": "203.0.113.1"})
        async with client.post(b.url + "/api/chat", json=CHAT, headers={"X-Forwarded-For": "203.0.113.2"}) as r:
            assert r.status == 503
            assert (await error_of(r))["code"] == "server_busy"
        gate.set()
        await held.read()
    finally:
        await a.stop()
        await b.stop()


async def test_a_live_stream_keeps_its_lease_beyond_the_lease_time(fake_ollama, client, redis_url):
    a, b = await two_instances(fake_ollama, redis_url, max_streams_per_client=1, stream_lease=1.0)
    try:
        held, gate = await hold_stream(client, a.url, fake_ollama)
        async with redis.asyncio.Redis.from_url(redis_url) as shared:
            first_expiry = await shared.zscore(streams_key(ME), *(await shared.zrange(streams_key(ME), 0, 0)))
            # Wait for a refresh to move the lease's expiry (every third of a lease).
            deadline = time.monotonic() + 10
            while await shared.zscore(streams_key(ME), *(await shared.zrange(streams_key(ME), 0, 0))) == first_expiry:
                assert time.monotonic() < deadline, "the lease was never refreshed"
                await asyncio.sleep(0.05)
        async with client.post(b.url + "/api/chat", json=CHAT) as response:
            assert response.status == 429
        gate.set()
        await held.read()
    finally:
        await a.stop()
        await b.stop()


async def test_a_crashed_instances_streams_stop_counting_when_their_leases_expire(fake_ollama, client, redis_url):
    crashing = await ServiceProcess(
        "--provider", "ollama", "--ollama-url", fake_ollama.url, "--port", "0",
        "--max-streams-per-client", "1", "--max-streams", "0", "--rate-per-minute", "0", "--stream-lease", "2",
        env={"REDIS_URL": redis_url},
    ).start()  # fmt: skip
    limits = {**NO_LIMITS, "max_streams_per_client": 1, "stream_lease": 2.0}
    survivor = await start_service(
        Settings(provider="ollama", ollama_url=fake_ollama.url, port=0, redis_url=redis_url, **limits)
    )
    try:
        fake_ollama.push(Script([token_lines(["held"])[0], Hang()]))
        response = await client.post(crashing.url + "/api/chat", json=CHAT)
        assert (await anext(iter_frames(response))).event == "meta"
        async with client.post(survivor.url + "/api/chat", json=CHAT) as refused:
            assert refused.status == 429
        crashing.signal(signal.SIGKILL)  # no finally runs: the lease is never released
        assert await crashing.wait() == -signal.SIGKILL
        response.close()
        async with redis.asyncio.Redis.from_url(redis_url) as shared:
            assert await shared.zcard(streams_key(ME)) == 1
        # The lease runs out within 2 s of its last refresh; nothing can be awaited but time.
        deadline = time.monotonic() + 20
        while True:
            async with client.post(survivor.url + "/api/chat", json=CHAT) as retry:
                if retry.status == 200:
                    await retry.read()
                    break
                assert retry.status == 429
            assert time.monotonic() < deadline, "the crashed instance's lease never expired"
            await asyncio.sleep(0.2)
    finally:
        await crashing.stop()
        await survivor.stop()


# -- Redis unreachable: limit in this process, say so, and come back


async def test_with_redis_unreachable_the_service_limits_locally_and_says_so(make_service, client, fake_ollama, caplog):
    dead = f"redis://127.0.0.1:{free_port()}/0"
    with caplog.at_level(logging.INFO, logger="llm_sse.limits"):
        service = await make_service(redis_url=dead, max_streams_per_client=1)
        held, gate = await hold_stream(client, service.url, fake_ollama)
        async with client.post(service.url + "/api/chat", json=CHAT) as response:
            assert response.status == 429  # still limited, by this process's own counts
        async with client.get(service.url + "/readyz") as response:
            assert (await response.json())["limits"] == "memory (redis unreachable)"
    warnings = [r for r in caplog.records if r.getMessage().startswith("shared limits unreachable")]
    assert warnings, "the fallback was not logged"
    assert all("127.0.0.1" not in r.getMessage() for r in warnings)  # the URL (and any password) stays out
    gate.set()
    await held.read()


async def test_a_redis_that_never_answers_costs_at_most_the_redis_timeout(make_service, client, blackhole_port):
    service = await make_service(
        redis_url=f"redis://127.0.0.1:{blackhole_port}/0", redis_timeout=0.2, max_streams_per_client=1
    )
    started = time.monotonic()
    async with client.post(service.url + "/api/chat", json=CHAT) as response:
        assert response.status == 200
        await response.read()
    assert time.monotonic() - started < 5  # bounded (0.2 s here), with room for a busy machine


async def test_when_redis_comes_back_the_limits_are_shared_again(make_service, client, fake_ollama, caplog):
    executable = find_redis_server()
    assert executable is not None
    port = free_port()
    service = await make_service(redis_url=f"redis://127.0.0.1:{port}/0", max_streams_per_client=1)
    limiter = service.app[LIMITER]
    limiter.retry_shared_after = 0.0  # try Redis again at the next request
    async with client.post(service.url + "/api/chat", json=CHAT) as response:
        assert response.status == 200
        await response.read()
    assert limiter.fallbacks == 1
    server = RedisServer(executable, port=port).start()
    try:
        with caplog.at_level(logging.INFO, logger="llm_sse.limits"):
            held, gate = await hold_stream(client, service.url, fake_ollama)
        assert any(r.getMessage() == "shared limits reachable again" for r in caplog.records)
        async with redis.asyncio.Redis.from_url(server.url) as shared:
            assert await shared.zcard(streams_key(ME)) == 1
        gate.set()
        await held.read()
        assert await limiter.wait_idle(10)
        assert limiter.fallbacks == 1
    finally:
        server.stop()
