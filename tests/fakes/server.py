"""What every fake upstream shares: an aiohttp app on a free loopback port, and its scripts."""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

from aiohttp import web

S = TypeVar("S")


class LoopbackServer:
    """Runs an app on 127.0.0.1 with handler cancellation, as real model servers behave:
    a handler learns at once that its client (the relay) went away."""

    _runner: web.AppRunner | None = None

    async def serve(self, app: web.Application) -> int:
        """Start ``app``; return its port."""
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        return int(self._runner.addresses[0][1])

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def open_connections(self) -> int:
        """TCP connections currently open to the server (idle keep-alive included)."""
        server = self._runner.server if self._runner else None
        return len(server.connections) if server is not None else 0


class ScriptedServer(LoopbackServer, Generic[S]):
    """A fake model server answering each chat with a script: one routed to its model, else the next pushed."""

    def __init__(self, models: list[str]) -> None:
        self.models = models
        self._queue: deque[S] = deque()
        self._routes: dict[str, S] = {}

    def push(self, script: S) -> None:
        """Answer the next chat request with ``script``."""
        self._queue.append(script)

    def route(self, model: str, script: S) -> None:
        """Answer every chat request for ``model`` with ``script``."""
        self._routes[model] = script
        if model not in self.models:
            self.models.append(model)

    def scripted(self, model: str) -> S | None:
        """The script for a request naming ``model``; None when the fake's default answer applies."""
        if model in self._routes:
            return self._routes[model]
        if self._queue:
            return self._queue.popleft()
        return None
