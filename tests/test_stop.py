"""Stop means stop: a client that leaves closes the upstream at once, whatever it was doing."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from urllib.parse import urlsplit

import pytest

from sse.web.keys import REGISTRY
from tests.fakes.ollama import Gate, Hang, Line, Script, Sleep, token_lines
from tests.helpers import eventually, iter_frames

CHAT = {"messages": [{"role": "user", "content": "hi"}]}


async def open_raw_stream(url: str, body: dict) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A bare TCP client, so the test decides exactly when and how the socket closes."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    payload = json.dumps(body).encode()
    writer.write(
        b"POST /api/chat HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(payload)}\r\n\r\n".encode()
        + payload
    )
    await writer.drain()
    return reader, writer


async def test_stop_before_the_first_token_closes_the_silent_upstream(service, fake_ollama):
    fake_ollama.push(Script([Hang()]))  # a model that is "loading": no byte at all
    _reader, writer = await open_raw_stream(service.url, CHAT)
    await eventually(lambda: len(fake_ollama.requests) == 1)
    closed_at = time.monotonic()
    writer.close()
    await asyncio.wait_for(fake_ollama.requests[0].disconnected.wait(), 5)
    lag = fake_ollama.requests[0].disconnected_at - closed_at
    # The requirement is 100 ms; the bound here is loose so a busy machine
    # cannot fail it (bench/ measures the real figure).
    assert lag < 1.0, f"upstream closed {lag * 1000:.0f} ms after the client"


async def test_stop_mid_answer_closes_the_upstream_while_it_is_silent(service, client, fake_ollama):
    gate = asyncio.Event()
    steps = token_lines(["one", " two"])
    fake_ollama.push(Script([steps[0], Gate(gate), *steps[1:]]))
    response = await client.post(service.url + "/api/chat", json=CHAT)
    frames = iter_frames(response)
    assert (await anext(frames)).event == "meta"
    assert (await anext(frames)).data == {"text": "one"}
    closed_at = time.monotonic()
    response.close()  # the browser's AbortController, as seen on the wire
    await asyncio.wait_for(fake_ollama.requests[0].disconnected.wait(), 5)
    assert fake_ollama.requests[0].disconnected_at - closed_at < 1.0
    assert not fake_ollama.requests[0].finished
    gate.set()


async def test_a_cancelled_stream_is_logged_as_cancelled(service, fake_ollama, caplog):
    fake_ollama.push(Script([token_lines(["partial"])[0], Hang()]))
    with caplog.at_level(logging.INFO, logger="llm_sse.stream"):
        reader, writer = await open_raw_stream(service.url, CHAT)
        await reader.readuntil(b"partial")
        writer.transport.abort()  # RST, like a killed tab
        await asyncio.wait_for(fake_ollama.requests[0].disconnected.wait(), 5)
        await eventually(lambda: any(r.name == "llm_sse.stream" for r in caplog.records))
    (line,) = [r.fields for r in caplog.records if r.name == "llm_sse.stream"]
    assert line["outcome"] == "cancelled"
    assert line["tokens"] == 1


async def test_a_client_that_stops_reading_is_dropped_after_the_send_timeout_even_for_large_frames(
    make_service, fake_ollama, caplog
):
    # Tokens that arrive together are coalesced into one frame, which can be
    # larger than the transport's high-water mark on its own: that write must
    # be bounded too, not only writes into an already non-empty buffer.
    service = await make_service(send_timeout=0.5)
    token = "x" * 4000
    total = 25_000  # 100 MB: far more than loopback socket buffers hold (they autotune to several MB)
    line = Line({"model": "m", "created_at": "x", "message": {"role": "assistant", "content": token}, "done": False})
    fake_ollama.push(Script([line] * total + [Hang()]))
    with caplog.at_level(logging.INFO, logger="llm_sse.stream"):
        reader, writer = await open_raw_stream(service.url, CHAT)
        await reader.readexactly(1)  # the stream started; now never read again
        await asyncio.wait_for(fake_ollama.requests[0].disconnected.wait(), 15)
        await eventually(lambda: any(r.name == "llm_sse.stream" for r in caplog.records))
    # Backpressure reached the upstream: it was not read to its end into memory.
    assert fake_ollama.requests[0].lines_sent < total
    (line,) = [r.fields for r in caplog.records if r.name == "llm_sse.stream"]
    assert line["outcome"] == "send_timeout"
    writer.close()


@pytest.mark.slow
async def test_a_thousand_streams_aborted_at_random_points_leave_nothing_behind(service, fake_ollama):
    rng = random.Random(20261126)
    steps = token_lines([f" t{i}" for i in range(40)])
    paced = [step for line in steps for step in (line, Sleep(0.001))]
    fake_ollama.route("paced", Script(paced))
    fake_ollama.route("silent", Script([Hang()]))
    baseline_tasks = len(asyncio.all_tasks())

    async def one(n: int) -> None:
        model = "silent" if n % 5 == 0 else "paced"
        marker = f"stream {n}"
        request = {"messages": [{"role": "user", "content": marker}], "model": model}
        reader, writer = await open_raw_stream(service.url, request)
        if model == "paced":
            for _ in range(rng.randrange(0, 30)):
                await reader.readuntil(b"\n\n")
        else:
            # Abort once the upstream holds the request (it never answers).
            await eventually(lambda: any(r.body["messages"][0]["content"] == marker for r in fake_ollama.requests))
        if rng.random() < 0.5:
            writer.transport.abort()
        else:
            writer.close()

    semaphore = asyncio.Semaphore(50)

    async def limited(n: int) -> None:
        async with semaphore:
            await one(n)

    await asyncio.gather(*(limited(n) for n in range(1000)))
    registry = service.app[REGISTRY]
    await eventually(lambda: not registry.streams, within=20)
    await fake_ollama.wait_idle(20)
    await eventually(lambda: fake_ollama.open_connections == 0, within=20)
    await eventually(lambda: len(asyncio.all_tasks()) <= baseline_tasks, within=20)
    unfinished = [r for r in fake_ollama.requests if not r.finished]
    assert all(r.disconnected.is_set() for r in unfinished)
