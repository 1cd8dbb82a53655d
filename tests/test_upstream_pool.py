"""After a complete answer the upstream connection is reused; the `done` frame never waits for that."""

from __future__ import annotations

import asyncio

from sse.providers import http
from tests.fakes.ollama import Gate, Hang, Line, Script, token_lines
from tests.helpers import eventually, read_frames, text_of

CHAT = {"messages": [{"role": "user", "content": "hi"}]}


async def test_a_finished_answer_returns_its_connection_to_the_pool_once_the_body_ends(service, client, fake_ollama):
    # Ollama flushes its done line, and only later ends the chunked body: the
    # gate holds the end back until the client has its `done` frame.
    body_end = asyncio.Event()
    fake_ollama.push(Script([*token_lines(["one", " two"]), Gate(body_end)]))
    async with client.post(service.url + "/api/chat", json=CHAT) as response:
        frames = await read_frames(response)
    assert frames[-1].event == "done"
    assert text_of(frames) == "one two"
    assert not fake_ollama.requests[0].finished  # the upstream body is still open
    body_end.set()
    await fake_ollama.wait_idle()
    async with client.post(service.url + "/api/chat", json=CHAT) as response:
        assert text_of(await read_frames(response)) == "Hello from the fake model."
    first, second = fake_ollama.requests
    assert second.peer == first.peer, "the second request should reuse the first one's connection"
    assert fake_ollama.open_connections == 1


async def test_a_body_that_never_ends_after_the_done_line_is_closed_after_a_bounded_wait(
    service, client, fake_ollama, monkeypatch
):
    monkeypatch.setattr(http, "DRAIN_TIMEOUT", 0.2)
    fake_ollama.push(Script([*token_lines(["one"]), Hang()]))
    async with client.post(service.url + "/api/chat", json=CHAT) as response:
        frames = await read_frames(response)
    assert frames[-1].event == "done"
    await asyncio.wait_for(fake_ollama.requests[0].disconnected.wait(), 5)
    await eventually(lambda: fake_ollama.open_connections == 0)


async def test_an_in_band_error_closes_the_upstream_at_once_and_its_frame_does_not_wait(
    service, client, fake_ollama, monkeypatch
):
    monkeypatch.setattr(http, "DRAIN_TIMEOUT", 60.0)  # a drain would show as a hang
    fake_ollama.push(Script([*token_lines(["one"])[:1], Line({"error": "model crashed"}), Hang()]))
    async with client.post(service.url + "/api/chat", json=CHAT) as response:
        frames = await asyncio.wait_for(read_frames(response), 10)
    assert frames[-1].event == "error"
    assert frames[-1].data["message"] == "model crashed"
    await asyncio.wait_for(fake_ollama.requests[0].disconnected.wait(), 5)
