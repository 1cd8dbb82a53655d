"""The floor: the least a relay written in Python can cost on this machine.

Not the product.  A deliberately minimal relay with the same wire formats as
the service -- Ollama's chunked NDJSON in, SSE frames out, chunked HTTP/1.1 --
and nothing else: no validation, limits, timeouts, heartbeats, logs or
metrics, no aiohttp, one callback per network read on each side.  Run by
``python bench/run.py --floor`` in the service's place (it takes the same
flags and ignores what it does not know), so the service's figures can be
read against what any Python relay would cost here.  It uses uvloop when it
is installed, as the fastest event loop a Python relay could choose.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any, cast
from urllib.parse import urlsplit

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class Upstream(asyncio.Protocol):
    """One upstream answer: de-chunk, split lines, write each read's tokens as one SSE chunk."""

    def __init__(self, client: asyncio.Transport) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.in_head = True
        self.partial_line = b""
        self.seq = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        buf = self.buffer + data if self.buffer else data
        if self.in_head:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buffer = buf
                return
            buf, self.in_head = buf[end + 4 :], False
        pieces, pos, finished = [], 0, False
        while (eol := buf.find(b"\r\n", pos)) >= 0:
            size = int(buf[pos:eol], 16)
            if size == 0:
                finished = True
                break
            if eol + 2 + size + 2 > len(buf):
                break
            pieces.append(buf[eol + 2 : eol + 2 + size])
            pos = eol + 4 + size
        self.buffer = buf[pos:]
        lines = (self.partial_line + b"".join(pieces)).split(b"\n")
        self.partial_line = lines.pop()
        frames = []
        for line in lines:
            if not line:
                continue
            obj: dict[str, Any] = json.loads(line)
            text = (obj.get("message") or {}).get("content") or obj.get("response")
            if text:
                self.seq += 1
                frames.append(b'event: token\ndata: {"text":%s}\nid: %d\n\n' % (_encode(text).encode(), self.seq))
            if obj.get("done"):
                frames.append(b"event: done\ndata: {}\nid: %d\n\n" % (self.seq + 1))
                finished = True
        if frames:
            body = b"".join(frames)
            self.client.write(b"%x\r\n%s\r\n" % (len(body), body))
        if finished:
            self.client.write(b"0\r\n\r\n")
            if self.transport is not None:
                self.transport.close()


class Client(asyncio.Protocol):
    """One client connection: GETs answer {} (health), a POST starts a relayed answer."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream_address = upstream
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.upstream: asyncio.BaseTransport | None = None
        self.starting: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head, rest = self.buffer[:end].decode("latin-1"), self.buffer[end + 4 :]
        if head.startswith("GET"):
            self.buffer = rest
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
            return
        length = next(int(h.split(":")[1]) for h in head.split("\r\n") if h.lower().startswith("content-length:"))
        if len(rest) < length:
            return
        self.buffer = rest[length:]
        self.starting = asyncio.ensure_future(self.relay(rest[:length]))

    async def relay(self, body: bytes) -> None:
        assert self.transport is not None
        self.transport.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
            b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        request = {**json.loads(body), "model": "bench", "stream": True}
        payload = json.dumps(request).encode()
        client = self.transport
        host, port = self.upstream_address
        self.upstream, _ = await asyncio.get_running_loop().create_connection(lambda: Upstream(client), host, port)
        self.upstream.write(  # type: ignore[attr-defined]
            b"POST /api/chat HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (host.encode(), len(payload), payload)
        )

    def connection_lost(self, exc: Exception | None) -> None:
        if self.upstream is not None:
            self.upstream.close()  # Stop: the upstream sees the close at once


async def serve(port: int, upstream: tuple[str, int]) -> None:
    server = await asyncio.get_running_loop().create_server(lambda: Client(upstream), "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ollama-url", required=True)
    parser.add_argument("--port", type=int, required=True)
    args, _ = parser.parse_known_args()
    url = urlsplit(args.ollama_url)
    try:
        import uvloop  # type: ignore[import-not-found]
    except ImportError:
        pass
    else:
        uvloop.install()
    asyncio.run(serve(args.port, (url.hostname or "127.0.0.1", url.port or 11434)))


if __name__ == "__main__":
    main()
