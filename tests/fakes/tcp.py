"""Small TCP parts for watching connections that HTTP fakes cannot see.

* ``DeadServer`` accepts each connection and closes it at once, counting them:
  a model server that is down, whose connection attempts can still be counted
  (a closed port refuses without a trace).
* ``TcpRelay`` sits between the service and a third-party server, piping
  bytes both ways, and records when the service closes its side: that is how
  a test sees Stop reach a server whose code it does not control.  Put
  between a client and the service, ``cut()`` is a network drop: every open
  connection is reset at once, mid-answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field


def closed_port() -> int:
    """A loopback port where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def closed_port_url() -> str:
    return f"http://127.0.0.1:{closed_port()}"


@contextlib.contextmanager
def blackhole() -> Iterator[int]:
    """A loopback port whose listen backlog is full: a connect to it hangs until its timeout."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port: int = server.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port))  # takes the one backlog place
    try:
        yield port
    finally:
        filler.close()
        server.close()


class DeadServer:
    """Accepts and immediately closes every connection; ``accepted`` counts them."""

    def __init__(self) -> None:
        self.accepted = 0
        self.url = ""
        self._server: asyncio.Server | None = None

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@dataclass
class RelayedConnection:
    """One connection through the relay."""

    to_server: int = 0  # bytes the service sent
    to_client: int = 0  # bytes the server sent back
    client_closed: asyncio.Event = field(default_factory=asyncio.Event)  # the service hung up
    server_closed: asyncio.Event = field(default_factory=asyncio.Event)  # the server hung up
    first_response: asyncio.Event = field(default_factory=asyncio.Event)
    transports: list[asyncio.BaseTransport] = field(default_factory=list)


class TcpRelay:
    """Listens on loopback and forwards every connection to ``host:port``."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.connections: list[RelayedConnection] = []
        self.new_connection = asyncio.Event()
        self.url = ""
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        connection = RelayedConnection()
        self.connections.append(connection)
        self.new_connection.set()
        server_reader, server_writer = await asyncio.open_connection(*self.target)
        connection.transports += [client_writer.transport, server_writer.transport]
        upstream = asyncio.create_task(self._pipe(client_reader, server_writer, connection, towards_server=True))
        downstream = asyncio.create_task(self._pipe(server_reader, client_writer, connection, towards_server=False))
        self._tasks.update((upstream, downstream))
        try:
            await asyncio.gather(upstream, downstream)
        finally:
            self._tasks.difference_update((upstream, downstream))
            for writer in (client_writer, server_writer):
                writer.close()

    @staticmethod
    async def _pipe(
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        connection: RelayedConnection,
        *,
        towards_server: bool,
    ) -> None:
        try:
            while data := await reader.read(65536):
                if towards_server:
                    connection.to_server += len(data)
                else:
                    connection.to_client += len(data)
                    connection.first_response.set()
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            (connection.client_closed if towards_server else connection.server_closed).set()
            # Pass the close on, so the other side sees it as it happened.
            writer.close()

    def cut(self) -> int:
        """Reset every open connection, both ways, as a dropped network does; the count cut."""
        cut = 0
        for connection in self.connections:
            if connection.client_closed.is_set() and connection.server_closed.is_set():
                continue
            for transport in connection.transports:
                if isinstance(transport, asyncio.WriteTransport):
                    transport.abort()
            cut += 1
        return cut

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks))
        if self._server is not None:
            await self._server.wait_closed()
