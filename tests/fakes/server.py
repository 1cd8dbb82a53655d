"""What every fake upstream shares: an aiohttp app on a free loopback port."""

from __future__ import annotations

from aiohttp import web


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
