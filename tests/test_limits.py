"""Rate and stream limits: the bucket's maths, the refusals, and a slot freed by every ending.

The service-level tests run twice: counting in memory, and in a real
redis-server (``backend`` fixture).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
import redis.asyncio

from sse.cli import drain
from sse.limits import Limits, MemoryBackend, RateLimited, ServerBusy, StreamLimiter, TokenBucket, TooManyStreams
from sse.protect import LIMITER
from sse.redis_limits import streams_key
from tests.fakes.ollama import Gate, Hang, Line, Script, token_lines
from tests.helpers import iter_frames, read_frames
from tests.test_stop import open_raw_stream

CHAT = {"messages": [{"role": "user", "content": "hi"}]}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- the token bucket


def test_a_bucket_refills_at_its_rate_up_to_its_capacity():
    bucket = TokenBucket(tokens=3.0, stamp=0.0)
    rate, capacity = 0.5, 3.0  # one token every 2 s
    assert [bucket.take(0.0, rate, capacity) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0, rate, capacity) == pytest.approx(2.0)  # exactly when the next token is there
    assert bucket.take(1.5, rate, capacity) == pytest.approx(0.5)
    assert bucket.take(2.0, rate, capacity) == 0.0
    assert bucket.level(1000.0, rate, capacity) == capacity  # never more than full


def test_a_refused_take_takes_nothing_and_a_clock_going_back_adds_nothing():
    bucket = TokenBucket(tokens=0.25, stamp=10.0)
    assert bucket.take(10.0, 1.0, 5.0) == pytest.approx(0.75)
    assert bucket.tokens == 0.25
    assert bucket.level(5.0, 1.0, 5.0) == 0.25


# -- the in-memory backend


def memory(clock: Clock, **limits: Any) -> MemoryBackend:
    return MemoryBackend(Limits(**{"lease_seconds": 30.0, **limits}), clock)


def test_a_burst_passes_then_the_rate_applies_with_the_exact_wait():
    clock = Clock()
    backend = memory(clock, rate_per_minute=6, burst=2, streams_per_client=0, streams=0)
    backend.admit_now("a", "s1")
    backend.admit_now("a", "s2")
    with pytest.raises(RateLimited) as refused:
        backend.admit_now("a", "s3")
    assert refused.value.retry_after == pytest.approx(10.0)
    assert refused.value.headers() == {"Retry-After": "10"}
    assert refused.value.body()["error"]["retry_after"] == 10
    backend.admit_now("b", "s4")  # another client has its own bucket
    clock.now += 10
    backend.admit_now("a", "s5")


def test_streams_are_capped_per_client_and_in_all():
    clock = Clock()
    backend = memory(clock, rate_per_minute=0, streams_per_client=2, streams=3)
    backend.admit_now("a", "1")
    backend.admit_now("a", "2")
    with pytest.raises(TooManyStreams) as refused:
        backend.admit_now("a", "3")
    assert (refused.value.status, refused.value.code) == (429, "too_many_streams")
    backend.admit_now("b", "4")
    with pytest.raises(ServerBusy) as busy:
        backend.admit_now("c", "5")
    assert (busy.value.status, busy.value.code, busy.value.headers()) == (503, "server_busy", {"Retry-After": "5"})
    backend.release_now("a", "1")
    backend.admit_now("c", "5")
    assert backend.open_streams == 3


def test_a_refused_admission_takes_no_token_and_holds_no_slot():
    clock = Clock()
    backend = memory(clock, rate_per_minute=1, burst=2, streams_per_client=1, streams=0)
    backend.admit_now("a", "1")
    for _ in range(5):
        with pytest.raises(TooManyStreams):
            backend.admit_now("a", "x")
    backend.release_now("a", "1")
    backend.admit_now("a", "2")  # the second token was still there
    backend.release_now("a", "2")
    with pytest.raises(RateLimited):
        backend.admit_now("a", "3")


def test_releasing_twice_or_an_unknown_stream_changes_nothing():
    backend = memory(Clock(), rate_per_minute=0, streams_per_client=1, streams=1)
    backend.admit_now("a", "1")
    backend.release_now("a", "1")
    backend.release_now("a", "1")
    backend.release_now("b", "nope")
    assert backend.open_streams == 0
    backend.admit_now("a", "2")


def test_memory_is_bounded_by_recent_clients():
    clock = Clock()
    backend = memory(clock, rate_per_minute=60, burst=5, streams_per_client=0, streams=0)
    for n in range(1000):
        backend.admit_now(f"client{n}", f"s{n}")
        backend.release_now(f"client{n}", f"s{n}")
    assert backend.tracked_clients == 1000
    clock.now += 10  # every bucket has refilled: they are forgotten at the next sweep
    backend.admit_now("late", "s")
    assert backend.tracked_clients == 1


async def test_limits_of_zero_turn_the_limiter_off():
    limiter = StreamLimiter(Limits(0, 5, 0, 0), MemoryBackend(Limits(0, 5, 0, 0)))
    async with limiter.stream("a", "1"), limiter.stream("a", "2"):
        assert limiter.held == 0


# -- through the service, in memory and in Redis


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Settings for the limits' backend under test."""
    if request.param == "memory":
        return {}
    return {"redis_url": request.getfixturevalue("redis_url")}


async def error_of(response) -> dict:
    body = await response.json()
    return body["error"]


async def hold_stream(client, url: str, fake_ollama, headers: dict[str, str] | None = None):
    """Start a stream and keep it open; returns (response, gate that lets it finish)."""
    gate = asyncio.Event()
    steps = token_lines(["held"])
    fake_ollama.push(Script([steps[0], Gate(gate), *steps[1:]]))
    response = await client.post(url + "/api/chat", json=CHAT, headers=headers or {})
    assert response.status == 200
    frames = iter_frames(response)
    assert (await anext(frames)).event == "meta"
    return response, gate


async def assert_no_slot_held(service, backend: dict[str, Any]) -> None:
    limiter = service.app[LIMITER]
    assert await limiter.wait_idle(10)
    assert limiter.local.open_streams == 0
    if "redis_url" in backend:
        async with redis.asyncio.Redis.from_url(backend["redis_url"]) as shared:
            assert await shared.zcard(streams_key()) == 0
            assert await shared.zcard(streams_key("ip:127.0.0.1")) == 0


async def test_over_the_rate_a_client_gets_429_rate_limited_with_retry_after(make_service, client, backend):
    service = await make_service(rate_per_minute=6, rate_burst=2, **backend)
    for _ in range(2):
        async with client.post(service.url + "/api/chat", json=CHAT) as response:
            assert response.status == 200
            await response.read()
    async with client.post(service.url + "/api/chat", json=CHAT) as response:
        assert response.status == 429
        error = await error_of(response)
        retry_after = int(response.headers["Retry-After"])
    assert error["code"] == "rate_limited"
    assert error["retry_after"] == retry_after
    assert 1 <= retry_after <= 10  # one token every 10 s
    assert "6 a minute" in error["message"]


async def test_a_client_over_its_open_streams_gets_429_too_many_streams(make_service, client, fake_ollama, backend):
    service = await make_service(max_streams_per_client=1, **backend)
    held, gate = await hold_stream(client, service.url, fake_ollama)
    async with client.post(service.url + "/api/chat", json=CHAT) as response:
        assert response.status == 429
        assert response.headers["Retry-After"] == "5"
        error = await error_of(response)
    assert (error["code"], error["retry_after"]) == ("too_many_streams", 5)
    async with client.get(service.url + "/healthz") as response:
        limits = (await response.json())["limits"]
    assert (limits["held"], limits["refused"]) == (1, {"too_many_streams": 1})
    gate.set()
    await held.read()
    held.close()
    await assert_no_slot_held(service, backend)
    async with client.post(service.url + "/api/chat", json=CHAT) as response:
        assert response.status == 200
        await response.read()


async def test_over_the_global_cap_everyone_gets_503_server_busy(make_service, client, fake_ollama, backend):
    service = await make_service(max_streams=1, trusted_proxies="127.0.0.1", **backend)
    held, gate = await hold_stream(client, service.url, fake_ollama, {"X-Forwarded-For": "203.0.113.1"})
    async with client.post(
        service.url + "/api/chat", json=CHAT, headers={"X-Forwarded-For": "203.0.113.2"}
    ) as response:
        assert response.status == 503
        assert response.headers["Retry-After"] == "5"
        assert (await error_of(response))["code"] == "server_busy"
    gate.set()
    await held.read()


async def test_limits_count_per_client_address_through_trusted_proxies(make_service, client, fake_ollama, backend):
    service = await make_service(max_streams_per_client=1, trusted_proxies="127.0.0.1", **backend)
    held, gate = await hold_stream(client, service.url, fake_ollama, {"X-Forwarded-For": "203.0.113.1"})
    async with client.post(
        service.url + "/api/chat", json=CHAT, headers={"X-Forwarded-For": "203.0.113.2"}
    ) as response:
        assert response.status == 200
        await response.read()
    async with client.post(
        service.url + "/api/chat", json=CHAT, headers={"X-Forwarded-For": "203.0.113.1"}
    ) as response:
        assert response.status == 429
    gate.set()
    await held.read()


async def test_a_refused_request_is_logged_with_its_code(make_service, client, fake_ollama, caplog):
    service = await make_service(max_streams_per_client=1)
    held, gate = await hold_stream(client, service.url, fake_ollama)
    with caplog.at_level(logging.INFO, logger="llm_sse.server"):
        async with client.post(service.url + "/api/chat", json=CHAT) as response:
            assert response.status == 429
    (line,) = [r.fields for r in caplog.records if r.getMessage() == "request rejected"]
    assert (line["status"], line["code"], line["client"]) == (429, "too_many_streams", "127.0.0.1")
    gate.set()
    await held.read()


# -- a slot is freed whatever the ending


async def test_a_slot_is_freed_when_the_stream_is_done(make_service, client, backend):
    service = await make_service(max_streams_per_client=1, **backend)
    async with client.post(service.url + "/api/chat", json=CHAT) as response:
        assert (await read_frames(response))[-1].event == "done"
    await assert_no_slot_held(service, backend)


async def test_a_slot_is_freed_when_the_upstream_fails_mid_answer(make_service, client, fake_ollama, backend):
    service = await make_service(max_streams_per_client=1, **backend)
    fake_ollama.push(Script([*token_lines(["a"])[:-1], Line({"error": "model crashed"})]))
    async with client.post(service.url + "/api/chat", json=CHAT) as response:
        assert (await read_frames(response))[-1].event == "error"
    await assert_no_slot_held(service, backend)


async def test_a_slot_is_freed_when_the_upstream_fails_before_the_stream(make_service, client, backend):
    service = await make_service(max_streams_per_client=1, **backend)
    async with client.post(service.url + "/api/chat", json={**CHAT, "model": "no-such-model"}) as response:
        assert response.status == 404
    await assert_no_slot_held(service, backend)


async def test_a_slot_is_freed_when_the_client_goes_away(make_service, client, fake_ollama, backend):
    service = await make_service(max_streams_per_client=1, **backend)
    held, _gate = await hold_stream(client, service.url, fake_ollama)
    assert service.app[LIMITER].held == 1
    held.close()
    await asyncio.wait_for(fake_ollama.requests[0].disconnected.wait(), 5)
    await assert_no_slot_held(service, backend)


async def test_a_slot_is_freed_when_the_client_stops_reading(make_service, fake_ollama, backend):
    service = await make_service(max_streams_per_client=1, send_timeout=0.5, **backend)
    content = {"role": "assistant", "content": "x" * 4000}
    line = Line({"model": "m", "created_at": "x", "message": content, "done": False})
    fake_ollama.push(Script([line] * 25_000 + [Hang()]))
    reader, writer = await open_raw_stream(service.url, CHAT)
    await reader.readexactly(1)  # started; never read again
    await asyncio.wait_for(fake_ollama.requests[0].disconnected.wait(), 15)
    await assert_no_slot_held(service, backend)
    writer.close()


async def test_a_slot_is_freed_when_the_server_shuts_down(make_service, client, fake_ollama, backend):
    service = await make_service(max_streams_per_client=1, **backend)
    fake_ollama.push(Script([token_lines(["partial"])[0], Hang()]))
    async with client.post(service.url + "/api/chat", json=CHAT) as response:
        frames = iter_frames(response)
        assert (await anext(frames)).event == "meta"
        shutdown = asyncio.create_task(drain(service.runner, 0.1))
        rest = [frame async for frame in frames]
        await shutdown
    assert rest[-1].event == "error"
    assert rest[-1].data["code"] == "shutdown"
    await assert_no_slot_held(service, backend)
