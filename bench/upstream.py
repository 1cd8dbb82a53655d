"""A lean fake Ollama for load: NDJSON over chunked HTTP/1.1, on a bare asyncio protocol.

It speaks the wire format the service's Ollama provider reads (the same as
tests/fakes/ollama.py, which is the faithful one): ``POST /api/chat`` answers
``200`` with ``Content-Type: application/x-ndjson`` and ``Transfer-Encoding:
chunked``, one compact JSON line per chunk, ``done: false`` lines carrying
``message.content``, then a ``done: true`` line with Ollama's counters and
durations, then the chunked terminator.  Connections are kept alive, so a
client that pools them can.  ``GET /api/tags`` and ``GET /api/version``
answer like Ollama for the service's start-up and readiness.

What each generation does is read from the last message's content,
``bench id=<id> n=<tokens> interval=<ms> mode=<stamp|fast|silent>``:

* ``stamp``: one line every ``interval`` ms, its text ``" @<ns>"`` where
  ``<ns>`` is ``time.monotonic_ns()`` taken just before the write (the same
  clock in every process of the machine), so a reader can measure each token's
  latency;
* ``fast``: lines as fast as the connection takes them (their text a constant
  ``" @0"``, or with ``size=<bytes>`` that many bytes of text after it: large
  tokens), written in batches while the socket is writable;
* ``silent``: nothing at all, like a model that is loading (until the client
  leaves).

Every generation is recorded (tokens sent, finished, and when its connection
closed while it was running), for the bench to read at ``GET /bench/generations``
(``POST /bench/reset`` forgets them).  This is a load tool, not a test fake:
it trusts its client.

Run: ``python bench/upstream.py [--port N]``; it prints ``listening <port>``.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import json
import random
import resource
import sys
import time
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any

CREATED_AT = b"2025-08-02T22:05:23.4452655Z"
_LINE_HEAD = b'{"model":"bench","created_at":"' + CREATED_AT + b'","message":{"role":"assistant","content":"'
_LINE_TAIL = b'"},"done":false}\n'
_FAST_LINE = _LINE_HEAD + b" @0" + _LINE_TAIL
_FAST_CHUNK = b"%x\r\n%s\r\n" % (len(_FAST_LINE), _FAST_LINE)
_FAST_BATCH_LINES = 32
_FAST_BATCH = _FAST_CHUNK * _FAST_BATCH_LINES
_TERMINATOR = b"0\r\n\r\n"
# The paced writer wakes at most this often and writes every line that is due.
_TICK_S = 0.0005


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _head(content_type: bytes, extra: bytes = b"") -> bytes:
    date = formatdate(usegmt=True).encode()
    return b"HTTP/1.1 200 OK\r\nContent-Type: " + content_type + b"\r\nDate: " + date + b"\r\n" + extra + b"\r\n"


def _json_response(obj: Any) -> bytes:
    body = json.dumps(obj, separators=(",", ":")).encode()
    return _head(b"application/json; charset=utf-8", b"Content-Length: %d\r\n" % len(body)) + body


def done_line(tokens: int, elapsed_ns: int) -> bytes:
    line = {
        "model": "bench",
        "created_at": CREATED_AT.decode(),
        "message": {"role": "assistant", "content": ""},
        "done": True,
        "done_reason": "stop",
        "total_duration": elapsed_ns + 1_000_000,
        "load_duration": 1_000_000,
        "prompt_eval_count": 8,
        "prompt_eval_duration": 1_000_000,
        "eval_count": tokens,
        "eval_duration": max(elapsed_ns, 1),
    }
    return json.dumps(line, separators=(",", ":")).encode() + b"\n"


_large: dict[int, tuple[bytes, bytes]] = {}


def _large_chunk(size: int) -> tuple[bytes, bytes]:
    """A fast line whose token carries ``size`` more bytes of text (one chunk, and a batch of them)."""
    if size not in _large:
        line = _LINE_HEAD + b" @0" + b"x" * size + _LINE_TAIL
        chunk = b"%x\r\n%s\r\n" % (len(line), line)
        _large[size] = (chunk, chunk * _FAST_BATCH_LINES)
    return _large[size]


def _write_if_open(transport: Any, data: bytes) -> None:
    if not transport.is_closing():
        transport.write(data)


def parse_spec(content: str) -> dict[str, str]:
    """``bench id=7 n=500 interval=5 mode=stamp`` -> its fields."""
    return dict(part.split("=", 1) for part in content.split() if "=" in part)


@dataclass(slots=True)
class Generation:
    id: str
    n: int
    interval_ns: int
    mode: str
    protocol: UpstreamProtocol
    started_ns: int
    sent: int = 0
    head_sent: bool = False
    finished: bool = False
    closed_ns: int | None = None  # its connection closed while it was running
    due_ns: int = 0
    size: int = 0  # fast mode: bytes of text per token beyond " @0"

    def record(self) -> list[Any]:
        return [self.id, self.sent, self.finished, self.closed_ns]


class Upstream:
    """Shared state: the paced schedule and every generation's record."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.generations: dict[str, Generation] = {}
        self.active = 0
        self.connections = 0  # ever accepted: fewer than generations when clients pool them
        self._heap: list[tuple[int, int, Generation]] = []
        self._order = 0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self.head = _head(b"application/x-ndjson", b"Transfer-Encoding: chunked\r\n")

    def start(self, gen: Generation) -> None:
        self.generations[gen.id] = gen
        self.active += 1
        if gen.mode == "fast":
            self.loop.call_soon(self.pump, gen)
        elif gen.mode == "stamp":
            # A random phase, so streams opened together do not tick together.
            gen.due_ns = time.monotonic_ns() + random.randrange(gen.interval_ns)
            self._schedule(gen)

    # -- paced generations

    def _schedule(self, gen: Generation) -> None:
        self._order += 1
        heapq.heappush(self._heap, (gen.due_ns, self._order, gen))
        self._arm()

    def _arm(self) -> None:
        if not self._heap:
            return
        at = max(self._heap[0][0] / 1e9, time.monotonic() + _TICK_S)
        if self._timer is not None and self._timer_at <= at:
            return
        if self._timer is not None:
            self._timer.cancel()
        # loop.time() is time.monotonic(): the due times convert directly.
        self._timer = self.loop.call_at(at, self._tick)
        self._timer_at = at

    def _tick(self) -> None:
        self._timer = None
        heap = self._heap
        now = time.monotonic_ns()
        while heap and heap[0][0] <= now:
            _, _, gen = heapq.heappop(heap)
            if gen.finished or gen.closed_ns is not None:
                continue
            transport = gen.protocol.transport
            if gen.sent >= gen.n:
                self._finish(gen)
                continue
            stamp = time.monotonic_ns()
            line = _LINE_HEAD + b" @%d" % stamp + _LINE_TAIL
            data = _chunk(line)
            if not gen.head_sent:
                gen.head_sent = True
                data = self.head + data
            transport.write(data)
            gen.sent += 1
            gen.due_ns += gen.interval_ns
            if gen.due_ns < now:  # fell behind: do not burst to catch up
                gen.due_ns = now
            self._order += 1
            heapq.heappush(heap, (gen.due_ns, self._order, gen))
        self._arm()

    # -- fast generations

    def pump(self, gen: Generation) -> None:
        protocol = gen.protocol
        if gen.finished or gen.closed_ns is not None or protocol.paused:
            return
        left = gen.n - gen.sent
        if left <= 0:
            self._finish(gen)
            return
        chunk, batch = (_FAST_CHUNK, _FAST_BATCH) if not gen.size else _large_chunk(gen.size)
        if left >= _FAST_BATCH_LINES:
            data, count = batch, _FAST_BATCH_LINES
        else:
            data, count = chunk * left, left
        if not gen.head_sent:
            gen.head_sent = True
            data = self.head + data
        protocol.transport.write(data)
        gen.sent += count
        if not protocol.paused:
            self.loop.call_soon(self.pump, gen)

    def _finish(self, gen: Generation) -> None:
        data = _chunk(done_line(gen.sent, time.monotonic_ns() - gen.started_ns))
        if not gen.head_sent:
            gen.head_sent = True
            data = self.head + data
        transport = gen.protocol.transport
        # Like Go's net/http: the done line is flushed, the terminator follows
        # in its own write when the handler returns.
        transport.write(data)
        self.loop.call_soon(_write_if_open, transport, _TERMINATOR)
        gen.finished = True
        self.active -= 1
        gen.protocol.generation = None

    # -- control

    def records(self) -> dict[str, Any]:
        return {
            "active": self.active,
            "connections": self.connections,
            "generations": [g.record() for g in self.generations.values()],
        }


class UpstreamProtocol(asyncio.Protocol):
    """One client connection: requests one after another (keep-alive)."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream
        self.transport: Any = None
        self.buffer = b""
        self.generation: Generation | None = None
        self.paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.upstream.connections += 1

    def connection_lost(self, exc: Exception | None) -> None:
        gen = self.generation
        if gen is not None and not gen.finished:
            gen.closed_ns = time.monotonic_ns()
            self.upstream.active -= 1
            self.generation = None

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        gen = self.generation
        if gen is not None and gen.mode == "fast":
            self.upstream.pump(gen)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1").split("\r\n")
            length = 0
            for header in head[1:]:
                name, _, value = header.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            method, path, _ = head[0].split(" ", 2)
            self.handle(method, path, body)

    def handle(self, method: str, path: str, body: bytes) -> None:
        upstream = self.upstream
        if method == "POST" and path in ("/api/chat", "/api/generate"):
            request = json.loads(body)
            messages = request.get("messages") or [{"content": request.get("prompt", "")}]
            spec = parse_spec(messages[-1]["content"])
            gen = Generation(
                id=spec.get("id", str(len(upstream.generations))),
                n=int(spec.get("n", "100")),
                interval_ns=max(1, int(float(spec.get("interval", "5")) * 1e6)),
                mode=spec.get("mode", "stamp"),
                protocol=self,
                started_ns=time.monotonic_ns(),
                size=int(spec.get("size", "0")),
            )
            self.generation = gen
            upstream.start(gen)
        elif path == "/api/tags":
            self.transport.write(_json_response({"models": [{"name": "bench", "model": "bench", "details": {}}]}))
        elif path == "/api/version":
            self.transport.write(_json_response({"version": "0.0.0-bench"}))
        elif path == "/bench/generations":
            self.transport.write(_json_response(upstream.records()))
        elif path == "/bench/reset":
            upstream.connections = 0
            upstream.generations = {
                k: g for k, g in upstream.generations.items() if not g.finished and g.closed_ns is None
            }
            self.transport.write(_json_response({"ok": True}))
        else:
            self.transport.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")


def raise_fd_limit() -> int:
    """Lift the soft limit on open files to the hard one (10,000 streams need it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


async def serve(host: str, port: int) -> None:
    upstream = Upstream()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: UpstreamProtocol(upstream), host, port, backlog=4096)
    print(f"listening {server.sockets[0].getsockname()[1]}", flush=True)
    # Until stdin closes: the bench's pipe, so the upstream never outlives it.
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    await reader.read()
    server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    raise_fd_limit()
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
