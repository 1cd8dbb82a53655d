"""The load generator: many chat streams on bare asyncio protocols, read as they arrive.

A client costs as little as a reader can: each network read is scanned once
with C-speed byte methods, never parsed frame by frame.  The upstream's token
texts are ``" @<ns>"`` (see bench/upstream.py), so counting ``@`` counts
tokens -- whether the service sent them one per frame or merged several into
one -- and each ``@<ns>`` stamp read against ``time.monotonic_ns()`` at the
read is that token's latency from the upstream's write to the client's read.

The same client reads the service's event stream (``relay``) or the
upstream's NDJSON itself (``direct``, the baseline): only the request and the
end-of-answer marker differ.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

_STAMP = re.compile(rb"@(\d+)")
_TERMINATOR = b"0\r\n\r\n"
# A client that never reads keeps this small a receive buffer.  Left to the
# kernel's autotuning, 200 of them on one machine hold gigabytes of socket
# memory between them and push the machine's TCP memory into pressure, where
# the kernel stalls every flow for tens of seconds: the stalled-client figure
# would measure the kernel, not the service.
STALLED_RCVBUF = 16 * 1024


@dataclass(frozen=True)
class Target:
    """Where streams go: the service (``relay``) or the upstream itself (``direct``)."""

    mode: str
    host: str
    port: int

    @property
    def done_marker(self) -> bytes:
        return b"event: done" if self.mode == "relay" else b'"done":true'

    def request(self, spec: str) -> bytes:
        body: dict[str, Any] = {"model": "bench", "messages": [{"role": "user", "content": spec}]}
        if self.mode == "direct":
            body["stream"] = True
        payload = json.dumps(body, separators=(",", ":")).encode()
        return (
            b"POST /api/chat HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
            b"Accept: text/event-stream\r\nContent-Length: %d\r\n\r\n%s"
        ) % (self.host.encode(), self.port, len(payload), payload)


@dataclass
class Totals:
    """What every client of one run adds to; latencies only while ``recording``."""

    tokens: int = 0
    streams_done: int = 0
    streams_failed: int = 0
    recording: bool = False
    latencies_ns: array[int] = field(default_factory=lambda: array("q"))
    failures: list[str] = field(default_factory=list)


class StreamClient(asyncio.Protocol):
    """One chat stream over one connection; it closes once the answer has ended."""

    def __init__(
        self,
        target: Target,
        ident: str,
        spec: str,
        totals: Totals,
        *,
        stamped: bool,
        on_end: Callable[[StreamClient], None] | None = None,
        stall: bool = False,
    ) -> None:
        self.target = target
        self.ident = ident
        self.spec = spec
        self.totals = totals
        self.stamped = stamped
        self.on_end = on_end
        self.transport: asyncio.Transport | None = None
        self.head = b""
        self.in_body = False
        self.tail = b""
        self.recent = b""
        self.tokens = 0
        self.done = False
        self.ended = False
        self.first_token = asyncio.get_running_loop().create_future()
        self.aborted_ns: int | None = None
        self.stall = stall  # send the request, then never read (a client that stopped reading)

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.target.request(self.spec))
        if self.stall:
            transport.pause_reading()

    def data_received(self, data: bytes) -> None:
        now = time.monotonic_ns()
        if not self.in_body:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            status = self.head[: self.head.find(b"\r\n")]
            data, self.head = self.head[end + 4 :], b""
            self.in_body = True
            if b" 200 " not in status:
                self._fail(f"{status.decode(errors='replace')}: {data[:200].decode(errors='replace')}")
                return
        if self.tail:
            data = self.tail + data
        cut = data.rfind(b"\n") + 1
        if not cut:
            self.tail = data
            return
        self.tail = data[cut:]
        region = data[:cut] if self.tail else data
        count = region.count(b"@")
        if count:
            self.tokens += count
            totals = self.totals
            totals.tokens += count
            if totals.recording and self.stamped:
                append = totals.latencies_ns.append
                for stamp in _STAMP.findall(region):
                    append(now - int(stamp))
            if not self.first_token.done():
                self.first_token.set_result(None)
        if not self.done and self.target.done_marker in region:
            self.done = True
        if self.done:
            self.recent = (self.recent + region)[-16:]
            if self.recent.endswith(_TERMINATOR):
                self.totals.streams_done += 1
                self._end()
                assert self.transport is not None
                self.transport.close()
        elif b"event: error" in region:
            self._fail(region[region.find(b"event: error") :][:300].decode(errors="replace"))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ended and self.aborted_ns is None and not self.stall:
            self._fail(f"connection closed before the answer ended ({exc or 'EOF'})")
        self._end()

    # -- control

    def abort(self) -> int:
        """Drop the connection the way a browser's Stop does; return when (monotonic ns)."""
        self.aborted_ns = time.monotonic_ns()
        if self.transport is not None:
            self.transport.abort()
        return self.aborted_ns

    def _fail(self, why: str) -> None:
        if self.ended:
            return
        self.totals.streams_failed += 1
        if len(self.totals.failures) < 10:
            self.totals.failures.append(why)
        self._end()
        if self.transport is not None:
            self.transport.abort()

    def _end(self) -> None:
        if self.ended:
            return
        self.ended = True
        if not self.first_token.done():
            self.first_token.set_result(None)
        if self.on_end is not None:
            self.on_end(self)


class Load:
    """Streams opened against one target; ``keep`` of them open while ``running``."""

    def __init__(self, target: Target, totals: Totals, *, prefix: str, connect_concurrency: int = 64) -> None:
        self.target = target
        self.totals = totals
        self.prefix = prefix
        self.loop = asyncio.get_running_loop()
        self.open: set[StreamClient] = set()
        self.count = 0
        self.running = False
        self._connects = asyncio.Semaphore(connect_concurrency)
        self._spawned: set[asyncio.Task[None]] = set()

    def _next_id(self) -> str:
        self.count += 1
        return f"{self.prefix}{self.count}"

    async def open_stream(
        self, n: int, interval_ms: float, mode: str, *, renew: bool = False, size: int = 0, stall: bool = False
    ) -> StreamClient:
        """Open one stream; with ``renew``, a new one replaces it when it ends while running.

        ``size``: bytes of text per token (fast mode); ``stall``: never read the answer.
        """
        on_end = self._renew(n, interval_ms, mode) if renew else self._forget
        ident = self._next_id()
        spec = f"bench id={ident} n={n} interval={interval_ms:g} mode={mode}" + (f" size={size}" if size else "")
        client = StreamClient(
            self.target, ident, spec, self.totals, stamped=mode == "stamp", on_end=on_end, stall=stall
        )
        self.open.add(client)
        async with self._connects:
            try:
                if stall:
                    await self.loop.create_connection(lambda: client, sock=await self._small_window())
                else:
                    await self.loop.create_connection(lambda: client, self.target.host, self.target.port)
            except OSError as exc:
                client.connection_lost(exc)
        return client

    async def _small_window(self) -> socket.socket:
        """A connected socket whose receive buffer is set before the handshake (it fixes the window)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, STALLED_RCVBUF)
            sock.setblocking(False)
            await self.loop.sock_connect(sock, (self.target.host, self.target.port))
        except OSError:
            sock.close()
            raise
        return sock

    def _forget(self, client: StreamClient) -> None:
        self.open.discard(client)

    def _renew(self, n: int, interval_ms: float, mode: str) -> Callable[[StreamClient], None]:
        def on_end(client: StreamClient) -> None:
            self.open.discard(client)
            if self.running:
                task = self.loop.create_task(self.open_stream(n, interval_ms, mode, renew=True))
                self._spawned.add(task)
                task.add_done_callback(self._spawned.discard)

        return on_end

    async def keep(self, concurrency: int, n: int, interval_ms: float, mode: str) -> list[StreamClient]:
        """Open ``concurrency`` streams that renew themselves until ``stop``."""
        self.running = True
        return list(
            await asyncio.gather(*(self.open_stream(n, interval_ms, mode, renew=True) for _ in range(concurrency)))
        )

    async def stop(self) -> None:
        """Stop renewing and drop every open stream."""
        self.running = False
        for task in list(self._spawned):
            await task
        for client in list(self.open):
            client.abort()
        self.open.clear()
