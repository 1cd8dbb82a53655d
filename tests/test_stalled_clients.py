"""A client that stops reading costs the service a bounded amount, whatever the upstream sends.

The stalled clients are real sockets that send their request and never read.
What the service holds for them is measured without timing: ``tracemalloc``
counts the bytes allocated by the service's own code and by its upstream
connections (aiohttp's client side) that are still alive, so the fake
upstream (in this process too) and the kernel's socket buffers are left out.
The figure in RSS, with 200 clients, is the benchmark's (bench/README.md).
"""

from __future__ import annotations

import asyncio
import gc
import socket
import tracemalloc
import types
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

import sse
from sse.events import MAX_MERGED_CHARS, Thinking, Token, coalesce
from sse.web.keys import REGISTRY
from tests.fakes.ollama import FakeOllama, Gate, Hang, Raw, Script, _chat_line, done_line, go_json
from tests.helpers import Service, StreamRecords, read_frames, text_of

# The mix a stalled client meets: a flood of tokens from small to large, far
# more than any buffer, arriving faster than anyone reads them.
SIZES = [1, 7, 60, 400, 3000, 9000, 20000]
FLOOD = [("abcdefghij" * (size // 10 + 1))[:size] for _ in range(40) for size in SIZES]
# More than the kernel's socket buffers take (see ``stalled_client``), so the
# stream really stalls in the process.
FLOOD_REPEATS = 2
STALLED = 2
# What one stalled stream may hold in the process (ARCHITECTURE.md, "Buffers"):
# at most 80 KiB and a frame in the transport, the upstream connection's read
# buffer and what its parser holds, the events of one read, and the stream's
# own objects: about 200 KiB measured here.  Before the cap it was 1.3 MB.
PER_STREAM_BUDGET = 256 * 1024
# A frame's bytes: the text's worst case is six bytes per character (a JSON escape).
MAX_FRAME_BYTES = MAX_MERGED_CHARS * 6 + 64


FLOOD_BYTES = b"".join(go_json(_chat_line("llama3.2:latest", text)) + b"\n" for text in FLOOD)


def flood_script(end: bool = False, gate: asyncio.Event | None = None) -> Script:
    """The flood in one write (and the done line); or a first token, ``gate``, the flood again and again, silence.

    The first read of a new upstream connection is whatever arrived with the
    headers (up to 256 KiB); every later read is bounded.  A model answers its
    headers long before it could flood, so the flood follows the first token.
    """
    if end:
        return Script([Raw(FLOOD_BYTES + go_json(done_line(eval_count=len(FLOOD))) + b"\n")])
    assert gate is not None
    first = Raw(go_json(_chat_line("llama3.2:latest", "Once")) + b"\n")
    return Script([first, Gate(gate), *(Raw(FLOOD_BYTES) for _ in range(FLOOD_REPEATS)), Hang()])


def chat_request(service: Service) -> bytes:
    body = b'{"messages":[{"role":"user","content":"flood me"}]}'
    host = service.url.removeprefix("http://")
    return b"POST /api/chat HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
        host.encode(),
        len(body),
        body,
    )


async def stalled_client(service: Service) -> socket.socket:
    """A connection that sends its request and never reads a byte.

    Loopback's socket buffers grow to megabytes; the service's end of this
    connection gets a small one as soon as its stream starts, so the stream
    stalls after a few hundred kilobytes instead of several megabytes (what
    the process holds once stalled does not depend on it).
    """
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    host, port = service.url.removeprefix("http://").rsplit(":", 1)
    await loop.sock_connect(sock, (host, int(port)))
    await loop.sock_sendall(sock, chat_request(service))
    mine = sock.getsockname()
    async with asyncio.timeout(10):
        while True:  # the stream's registration happens in the service's handler: polled
            for stream in service.app[REGISTRY].streams:
                transport = stream.writer.request.transport  # type: ignore[attr-defined]
                if transport is not None and transport.get_extra_info("peername") == mine:
                    transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
                    return sock
            await asyncio.sleep(0.005)


@pytest.fixture
def traced() -> Iterator[None]:
    """Stops tracing at the end; a test starts it once set up, so only what follows is traced."""
    try:
        yield
    finally:
        tracemalloc.stop()


def held_by_the_service() -> int:
    """Bytes alive now that the service's code or its upstream connections allocated."""
    return sum(stat.size for stat in service_snapshot().statistics("filename"))


def service_snapshot() -> tracemalloc.Snapshot:
    # A stream that ended by an exception leaves reference cycles (exception,
    # traceback, frames) that the collector frees at its next pass: not held.
    gc.collect()
    package = str(Path(sse.__file__).parent)
    aiohttp_dir = str(Path(aiohttp.__file__).parent)
    return tracemalloc.take_snapshot().filter_traces(
        [
            tracemalloc.Filter(True, f"{package}/*", all_frames=True),
            tracemalloc.Filter(True, f"{aiohttp_dir}/client*.py", all_frames=True),
            tracemalloc.Filter(True, f"{aiohttp_dir}/streams.py", all_frames=True),
        ]
    )


async def wait_stalled(service: Service, count: int, within: float = 30.0) -> None:
    """Until ``count`` streams have filled their client's buffers and wait to write (aiohttp paused them)."""

    def stalled() -> int:
        return sum(
            1
            for stream in service.app[REGISTRY].streams
            if stream.writer.request.transport is not None  # type: ignore[attr-defined]
            and stream.writer.request.protocol.writing_paused  # type: ignore[attr-defined]
        )

    async with asyncio.timeout(within):
        while stalled() < count:  # noqa: ASYNC110 (the transports' flow control has no event to await)
            await asyncio.sleep(0.02)


async def timed_out_wave(
    service: Service, fake_ollama: FakeOllama, records: StreamRecords, closing: list[socket.socket]
) -> None:
    """``STALLED`` clients that stop reading a flood, each stream ended by the send timeout, none left."""
    for _ in range(STALLED):
        gate = asyncio.Event()
        fake_ollama.push(flood_script(gate=gate))
        closing.append(await stalled_client(service))
        gate.set()
    outcomes = [(await records.next(within=30.0))["outcome"] for _ in range(STALLED)]
    assert outcomes == ["send_timeout"] * STALLED
    assert await service.app[REGISTRY].wait_idle(10.0)


@pytest.fixture
async def closing() -> AsyncIterator[list[socket.socket]]:
    sockets: list[socket.socket] = []
    yield sockets
    for sock in sockets:
        sock.close()


# -- merging tokens: frames of bounded size


def test_coalesce_caps_a_merged_event_and_splits_a_longer_token() -> None:
    events = [Token("a" * 3000), Token("b" * 3000), Thinking("t"), Token("c" * 10000, count=1)]
    merged = coalesce(events, limit=4096)
    assert all(len(e.text) <= 4096 for e in merged if isinstance(e, Token | Thinking))
    assert [type(e) for e in merged] == [Token, Token, Thinking, Token, Token, Token]
    assert "".join(e.text for e in merged if isinstance(e, Token)) == "a" * 3000 + "b" * 3000 + "c" * 10000
    assert sum(e.count for e in merged if isinstance(e, Token)) == 3


def test_coalesce_still_merges_a_run_of_small_tokens_into_one_event() -> None:
    assert coalesce([Token("a"), Token("b"), Token("c")]) == [Token("abc", 3)]
    assert coalesce([Token("x" * 5000)], limit=4096) == [Token("x" * 4096), Token("x" * 904, 0)]


async def test_a_read_full_of_large_tokens_reaches_the_client_whole_in_frames_of_bounded_size(
    service: Service, fake_ollama: FakeOllama, client: aiohttp.ClientSession
) -> None:
    fake_ollama.push(flood_script(end=True))
    async with client.post(service.url + "/api/chat", json={"messages": [{"role": "user", "content": "x"}]}) as r:
        frames = await read_frames(r)
    assert frames[-1].event == "done"
    assert text_of(frames) == "".join(FLOOD)
    assert max(len(f.data["text"]) for f in frames if f.event == "token") <= MAX_MERGED_CHARS
    assert frames[-1].data["usage"]["completion_tokens"] == len(FLOOD)


# -- stalled clients


async def test_a_client_that_stops_reading_holds_a_bounded_buffer_whatever_the_token_sizes(
    make_service, fake_ollama: FakeOllama, traced: None, closing: list[socket.socket]
) -> None:
    service = await make_service(send_timeout=60.0)
    fake_ollama.push(flood_script(end=True))  # a warm-up: code paths and caches, before the baseline
    async with (
        aiohttp.ClientSession() as session,
        session.post(service.url + "/api/chat", json={"messages": [{"role": "user", "content": "x"}]}) as response,
    ):
        await response.read()
    tracemalloc.start(16)
    baseline = held_by_the_service()
    for _ in range(STALLED):
        gate = asyncio.Event()
        fake_ollama.push(flood_script(gate=gate))
        closing.append(await stalled_client(service))
        gate.set()
    await wait_stalled(service, STALLED)
    held = held_by_the_service() - baseline
    for stream in service.app[REGISTRY].streams:
        transport = stream.writer.request.transport  # type: ignore[attr-defined]
        assert transport.get_write_buffer_size() <= 80 * 1024 + 2 * MAX_FRAME_BYTES
    assert held / STALLED < PER_STREAM_BUDGET, f"{held / STALLED / 1024:.0f} KiB per stalled stream"


async def test_a_second_wave_of_stalled_clients_after_the_send_timeout_leaves_the_process_no_bigger(
    make_service, fake_ollama: FakeOllama, traced: None, closing: list[socket.socket]
) -> None:
    service = await make_service(send_timeout=1.0)
    records = StreamRecords(service.app)

    async def wave() -> tracemalloc.Snapshot:
        await timed_out_wave(service, fake_ollama, records, closing)
        await fake_ollama.wait_idle(10.0)
        return service_snapshot()

    tracemalloc.start(16)
    first = await wave()
    second = await wave()
    grown = second.compare_to(first, "traceback")
    growth = sum(stat.size_diff for stat in grown)
    assert growth < 16 * 1024, "\n".join(f"{s}\n{s.traceback.format()[-8:]}" for s in grown[:5])


async def test_a_stream_ended_by_the_send_timeout_is_freed_without_waiting_for_the_cycle_collector(
    make_service, fake_ollama: FakeOllama, closing: list[socket.socket]
) -> None:
    """Its exception's traceback held its frames in a cycle with its tasks.

    A burst of such streams kept its memory until a full collection ran.
    """
    service = await make_service(send_timeout=1.0)
    records = StreamRecords(service.app)
    gc.collect()
    gc.disable()
    try:
        await timed_out_wave(service, fake_ollama, records, closing)
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
    finally:
        gc.set_debug(0)
        gc.enable()
    garbage = gc.garbage[:]
    gc.garbage.clear()
    package = str(Path(sse.__file__).parent)
    frames = [
        f"{o.f_code.co_filename}:{o.f_code.co_name}"
        for o in garbage
        if isinstance(o, types.FrameType) and o.f_code.co_filename.startswith(package)
    ]
    assert not frames
