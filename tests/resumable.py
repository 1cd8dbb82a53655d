"""Resumable streams as the suites drive them: an answer held at gates, a client that leaves, a resume.

The one-instance suite (``test_resumable.py``) and the suites where two
instances share one Redis (``test_resumable_redis.py``, ``test_redis_faults.py``)
set up their streams with these, so each test reads as what it checks.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import aiohttp

from tests.fakes.ollama import FakeOllama, Gate, Hang, Recorded, Script, token_lines
from tests.helpers import Frame, MakeService, Service, iter_frames, read_frames, text_of

ASK = {"messages": [{"role": "user", "content": "Tell me a story"}]}
RESUMABLE_ASK = {**ASK, "resumable": True}
WORDS = [f" w{i}" for i in range(30)]
DISCONNECT_WAIT = 10.0


def held_script(words: list[str], *gates: tuple[int, asyncio.Event]) -> Script:
    """The answer ``words``, the upstream held on each gate before the word at its index."""
    steps = token_lines(words)
    for index, gate in sorted(gates, key=lambda g: g[0], reverse=True):
        steps.insert(index, Gate(gate))
    return Script(steps)


def drop(response: aiohttp.ClientResponse) -> None:
    """Cut the client's TCP connection the way a network drop does (RST, no FIN)."""
    assert response.connection is not None
    transport = response.connection.transport
    assert transport is not None
    transport.abort()
    # Give the connection back (closed) at once: left to the garbage collector,
    # it warns "Unclosed connection" in whichever test happens to run then.
    response.close()


async def read_until(frames: Any, text: str) -> list[Frame]:
    """Frames until the answer so far ends with ``text``."""
    seen: list[Frame] = []
    async for frame in frames:
        seen.append(frame)
        if text_of(seen).endswith(text):
            return seen
    raise AssertionError(f"the stream ended before {text!r}: {seen}")


def resume_headers(meta: dict[str, Any], after: int | str | None = None) -> dict[str, str]:
    headers = {"X-Resume-Token": meta["resume"]["token"]}
    if after is not None:
        headers["Last-Event-ID"] = str(after)
    return headers


async def resume(
    client: aiohttp.ClientSession, service: Service, meta: dict[str, Any], after: int | str | None = None
) -> tuple[int, Any]:
    """GET the stream after ``after``: the status and the frames, or the JSON error."""
    async with client.get(service.url + meta["resume"]["url"], headers=resume_headers(meta, after)) as response:
        if response.content_type == "text/event-stream":
            return response.status, await read_frames(response)
        if response.status == 204:
            return 204, await response.read()
        return response.status, await response.json()


def assert_contiguous(frames: list[Frame]) -> None:
    """Every frame once, in order: ids 1..n with no gap and no repeat."""
    assert [int(f.id) for f in frames] == list(range(1, len(frames) + 1))


def assert_whole(frames: list[Frame]) -> None:
    """``WORDS`` answered in full: every frame once, in order, then ``done``."""
    assert_contiguous(frames)
    assert text_of(frames) == "".join(WORDS)
    assert frames[-1].event == "done"


# -- a stream its client leaves mid-answer


@dataclass
class Started:
    """A resumable stream as its first client saw it: the frames it read, the model's request."""

    response: aiohttp.ClientResponse
    frames: list[Frame]
    upstream: Recorded

    @property
    def meta(self) -> dict[str, Any]:
        data: dict[str, Any] = self.frames[0].data
        return data

    @property
    def last_id(self) -> str:
        return self.frames[-1].id


async def held_stream(
    client: aiohttp.ClientSession,
    service: Service,
    fake: FakeOllama,
    *gates: tuple[int, asyncio.Event],
    until: str = " w9",
    leave: bool = True,
) -> Started:
    """POST a resumable chat answering ``WORDS`` held at ``gates``; read to ``until``, then drop (``leave``)."""
    fake.push(held_script(WORDS, *gates))
    return await _start(client, service, fake, until, leave)


async def silent_stream(
    client: aiohttp.ClientSession, service: Service, fake: FakeOllama, *, leave: bool = True
) -> Started:
    """POST a resumable chat whose model says "Partial", then nothing; read it, then drop (``leave``)."""
    fake.push(Script([*token_lines(["Partial"])[:1], Hang()]))
    return await _start(client, service, fake, "Partial", leave)


async def _start(client: aiohttp.ClientSession, service: Service, fake: FakeOllama, until: str, leave: bool) -> Started:
    response = await client.post(service.url + "/api/chat", json=RESUMABLE_ASK)
    frames = await read_until(iter_frames(response), until)
    if leave:
        drop(response)
    return Started(response, frames, fake.requests[-1])


# -- two instances, one Redis


async def two_instances(make_service: MakeService, redis_url: str, **overrides: Any) -> tuple[Service, Service]:
    """Two instances of the service with the same settings, sharing the Redis at ``redis_url``."""
    return (
        await make_service(redis_url=redis_url, **overrides),
        await make_service(redis_url=redis_url, **overrides),
    )


async def cancel_elsewhere(client: aiohttp.ClientSession, service: Service, meta: dict[str, Any]) -> None:
    """Cancel the stream through ``service`` (any instance), and check it was cancelled there and then."""
    url = service.url + meta["resume"]["url"] + "/cancel"
    async with client.post(url, headers=resume_headers(meta)) as cancelled:
        assert cancelled.status == 200
        assert await cancelled.json() == {"id": meta["id"], "status": "cancelled"}
