"""SIGTERM/SIGINT: stop accepting, let streams finish, end the rest with `shutdown`, exit 0."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.fakes.ollama import Gate, Hang, Script, token_lines
from tests.helpers import eventually, iter_frames, read_frames, text_of
from tests.process import ServiceProcess

CHAT = {"messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
async def start_process(fake_ollama) -> AsyncIterator:
    started: list[ServiceProcess] = []

    async def start(*args: str) -> ServiceProcess:
        process = ServiceProcess("--provider", "ollama", "--ollama-url", fake_ollama.url, "--port", "0", *args)
        started.append(await process.start())
        return process

    yield start
    for process in started:
        await process.stop()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_a_stream_that_finishes_within_the_grace_period_ends_with_done(
    start_process, fake_ollama, client, signum
):
    service = await start_process("--shutdown-grace", "20")
    gate = asyncio.Event()
    steps = token_lines(["before", " after"])
    fake_ollama.push(Script([steps[0], Gate(gate), *steps[1:]]))
    async with client.post(service.url + "/api/chat", json=CHAT) as response:
        frames = iter_frames(response)
        assert (await anext(frames)).event == "meta"
        assert (await anext(frames)).data["text"] == "before"
        service.signal(signum)
        await service.wait_for_line(lambda line: line.get("msg") == "shutting down")
        gate.set()
        rest = [frame async for frame in frames]
    assert text_of(rest) == " after"
    assert rest[-1].event == "done"
    assert await service.wait() == 0


async def test_a_stream_still_open_after_the_grace_period_ends_with_a_shutdown_error(
    start_process, fake_ollama, client
):
    service = await start_process("--shutdown-grace", "0.5")
    fake_ollama.push(Script([token_lines(["partial"])[0], Hang()]))
    async with client.post(service.url + "/api/chat", json=CHAT) as response:
        frames = iter_frames(response)
        assert (await anext(frames)).event == "meta"
        service.signal()
        rest = [frame async for frame in frames]
    assert text_of(rest) == "partial"
    assert rest[-1].event == "error"
    assert rest[-1].data["code"] == "shutdown"
    assert await service.wait() == 0
    await asyncio.wait_for(fake_ollama.requests[0].disconnected.wait(), 5)
    line = await service.wait_for_line(lambda line: line.get("msg") == "stream")
    assert line["outcome"] == "shutdown"


async def test_a_stream_waiting_for_its_first_token_gets_a_503_json_at_shutdown(start_process, fake_ollama, client):
    service = await start_process("--shutdown-grace", "0.3", "--heartbeat", "60")
    fake_ollama.push(Script([Hang()]))
    # Nothing is committed yet: the signal arrives while the client waits for headers.
    pending = asyncio.create_task(client.post(service.url + "/api/chat", json=CHAT))
    await eventually(lambda: fake_ollama.requests)
    service.signal()
    async with await pending as response:
        assert response.status == 503
        assert (await response.json())["error"]["code"] == "shutdown"
    assert await service.wait() == 0


async def test_no_new_connections_are_accepted_while_draining(start_process, fake_ollama, client):
    service = await start_process("--shutdown-grace", "20")
    gate = asyncio.Event()
    fake_ollama.push(Script([token_lines(["a"])[0], Gate(gate), *token_lines(["a"])[1:]]))
    async with client.post(service.url + "/api/chat", json=CHAT) as response:
        frames = iter_frames(response)
        await anext(frames)
        service.signal()
        await service.wait_for_line(lambda line: line.get("msg") == "shutting down")
        async with aiohttp.ClientSession() as fresh:
            with pytest.raises(aiohttp.ClientConnectorError):
                await fresh.get(service.url + "/healthz")
        gate.set()
        assert (await read_frames(response))[-1].event == "done"
    assert await service.wait() == 0


async def test_a_new_request_on_a_kept_alive_connection_while_draining_gets_503(start_process, fake_ollama):
    service = await start_process("--shutdown-grace", "20")
    gate = asyncio.Event()
    fake_ollama.push(Script([token_lines(["a"])[0], Gate(gate), *token_lines(["a"])[1:]]))
    connector = aiohttp.TCPConnector(limit=2)
    async with aiohttp.ClientSession(connector=connector) as session:
        # Two pooled connections: one for the stream, one kept alive and idle.
        warm = await asyncio.gather(*(session.get(service.url + "/healthz") for _ in range(2)))
        for response in warm:
            await response.read()
            response.release()
        async with session.post(service.url + "/api/chat", json=CHAT) as response:
            await anext(iter_frames(response))
            service.signal()
            await service.wait_for_line(lambda line: line.get("msg") == "shutting down")
            async with session.post(service.url + "/api/chat", json=CHAT) as refused:
                assert refused.status == 503
                assert refused.headers["Retry-After"] == "1"
                assert (await refused.json())["error"]["code"] == "shutting_down"
            async with session.get(service.url + "/readyz") as ready:
                assert ready.status == 503
            gate.set()
            await response.read()
    assert await service.wait() == 0


async def test_an_idle_service_exits_0_on_sigterm(start_process):
    service = await start_process()
    service.signal()
    assert await service.wait(within=15) == 0
    await service.wait_for_line(lambda line: line.get("msg") == "stopped")


async def test_a_resumable_generation_still_open_after_the_grace_period_ends_with_a_shutdown_error(
    start_process, fake_ollama, client
):
    service = await start_process("--shutdown-grace", "0.5")
    fake_ollama.push(Script([token_lines(["partial"])[0], Hang()]))
    async with client.post(service.url + "/api/chat", json={**CHAT, "resumable": True}) as response:
        frames = iter_frames(response)
        meta = (await anext(frames)).data
        headers = {"X-Resume-Token": meta["resume"]["token"], "Last-Event-ID": "1"}
        async with client.get(service.url + meta["resume"]["url"], headers=headers) as follower:
            assert await follower.content.readuntil(b"\n\n") == b"retry: 1000\n\n"
            service.signal()
            rest = [frame async for frame in frames]
            followed = await read_frames(follower)
    # The stream's own client and the client that resumed it both learn why it ended.
    for got in (rest, followed):
        assert text_of(got) == "partial"
        assert (got[-1].event, got[-1].data["code"]) == ("error", "shutdown")
    assert await service.wait() == 0
    await asyncio.wait_for(fake_ollama.requests[0].disconnected.wait(), 5)
    line = await service.wait_for_line(lambda line: line.get("msg") == "stream")
    assert (line["outcome"], line["resumable"]) == ("shutdown", True)
