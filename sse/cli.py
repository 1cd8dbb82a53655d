"""Command line: read the settings, serve, and shut down gracefully.

Shutdown on SIGTERM or SIGINT: stop accepting connections, let open streams
finish for ``shutdown_grace`` seconds, then end each remaining one with an
``event: error`` frame (code ``shutdown``) -- a client always learns why its
answer stopped -- and exit 0.

Under systemd (``Type=notify``, see deploy/llm-sse.service) the service says
``READY=1`` once its socket accepts connections and ``STOPPING=1`` when the
drain begins (``sse.systemd``; a no-op elsewhere).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from aiohttp import web

from . import logs, systemd
from .errors import StartupError
from .settings import Settings, SettingsError
from .stream.registry import shutdown_error
from .web.app import create_app, make_runner
from .web.keys import REGISTRY

log = logging.getLogger("llm_sse")

# Once the grace period is over, streams get this long to write their final frame.
_FINAL_FRAME_WINDOW = 5.0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = Settings.load(argv)
    except SettingsError as exc:
        print(f"llm-sse: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level)
    try:
        return asyncio.run(serve(settings))
    except KeyboardInterrupt:  # a second Ctrl-C during shutdown
        return 130


async def serve(settings: Settings) -> int:
    try:
        app = create_app(settings)
    except SettingsError as exc:  # e.g. an unreadable key file
        print(f"llm-sse: {exc}", file=sys.stderr)
        return 2
    except StartupError as exc:  # e.g. an unreadable REDIS_URL_FILE
        print(f"llm-sse: {exc}", file=sys.stderr)
        return 1
    runner = make_runner(app, shutdown_timeout=_FINAL_FRAME_WINDOW)
    try:
        await runner.setup()
    except StartupError as exc:
        log.error("cannot start", extra={"why": str(exc)})
        print(f"llm-sse: {exc}", file=sys.stderr)
        await runner.cleanup()
        return 1
    site = web.TCPSite(runner, settings.host, settings.port)
    try:
        await site.start()
    except OSError as exc:
        print(f"llm-sse: cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}", file=sys.stderr)
        await runner.cleanup()
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    url = f"http://{settings.host}:{_bound_port(site, settings.port)}/"
    log.info("listening", extra={"url": url})
    systemd.notify("READY=1", f"STATUS=listening on {url}")
    await stop.wait()
    await drain(runner, settings.shutdown_grace)
    return 0


async def drain(runner: web.AppRunner, grace: float) -> None:
    """Stop accepting, give open streams ``grace`` seconds, then end them."""
    registry = runner.app[REGISTRY]
    registry.draining = True
    systemd.notify("STOPPING=1", f"STATUS=draining {len(registry.streams)} open streams")
    for site in list(runner.sites):
        await site.stop()
    log.info("shutting down", extra={"open_streams": len(registry.streams), "grace_s": grace})
    if not await registry.wait_idle(grace):
        registry.end_all(shutdown_error())
        await registry.wait_idle(_FINAL_FRAME_WINDOW)
    await runner.cleanup()
    log.info("stopped")


def _bound_port(site: web.TCPSite, default: int) -> int:
    server = site._server  # the asyncio server; its socket knows the real port when 0 was asked
    sockets = getattr(server, "sockets", None) or []
    return int(sockets[0].getsockname()[1]) if sockets else default
