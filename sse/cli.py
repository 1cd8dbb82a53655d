"""Command line: read the settings, take the port, start, serve, and shut down gracefully.

Start-up fails fast and says how to fix it: the settings are checked first
(exit 2), then the listening address is taken -- before a model loads, so a
port in use is reported in a second, not after the weights are read -- then
the model servers are chosen and started (exit 1 when none can serve).  Every
such error is one sentence with the fix; nothing is half-started.

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
import errno
import ipaddress
import logging
import signal
import socket
import sys
from collections.abc import Sequence

from aiohttp import web

from . import __version__, logs, systemd
from .errors import StartupError
from .settings import ENV, Settings, SettingsError
from .stream.registry import shutdown_error
from .web.app import create_app, make_runner
from .web.keys import REGISTRY

log = logging.getLogger("llm_sse")

# Once the grace period is over, streams get this long to write their final frame.
_FINAL_FRAME_WINDOW = 5.0
# What a person is told to type when the port is taken.
_OTHER_PORT = 9000


class ListenError(OSError):
    """The address to listen on cannot be had; the message says what to do instead."""


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = Settings.load(argv)
    except SettingsError as exc:
        print(f"llm-sse: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level, settings.log_format)
    try:
        return asyncio.run(serve(settings))
    except KeyboardInterrupt:  # a second Ctrl-C during shutdown
        return 130


async def serve(settings: Settings) -> int:
    try:
        sockets = bind(settings)
    except ListenError as exc:
        log.error("cannot start", extra={"why": str(exc)})
        return 1
    url = url_of(settings.host, sockets[0].getsockname()[1])
    log.info("starting", extra={"version": __version__, "url": url})
    try:
        app = create_app(settings)
    except (SettingsError, StartupError) as exc:  # e.g. an unreadable key file
        _close(sockets)
        log.error("cannot start", extra={"why": str(exc)})
        return 2 if isinstance(exc, SettingsError) else 1
    runner = make_runner(app, shutdown_timeout=_FINAL_FRAME_WINDOW)
    try:
        await runner.setup()  # chooses and starts the model servers: the built-in model loads here
    except (SettingsError, StartupError) as exc:
        _close(sockets)
        log.error("cannot start", extra={"why": str(exc)})
        await runner.cleanup()
        return 2 if isinstance(exc, SettingsError) else 1
    for sock in sockets:
        await web.SockSite(runner, sock).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    log.info("listening", extra={"url": url})
    systemd.notify("READY=1", f"STATUS=listening on {url}")
    await stop.wait()
    await drain(runner, settings.shutdown_grace)
    return 0


def bind(settings: Settings) -> list[socket.socket]:
    """Take the listening address now, before anything slow, without accepting yet.

    The sockets are bound but not listening: a connection that comes while
    the model loads is refused, not left waiting.  A host name may stand for
    several addresses (``localhost``: 127.0.0.1 and ::1); each gets a socket,
    all on one port (the one the first got, when ``--port 0`` asked for any).
    """
    host, port = settings.host, settings.port
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        raise ListenError(
            f"cannot listen on {host}:{port}: {host!r} is not an address of this machine; "
            f"set {settings.name_of('host')} to 127.0.0.1 (this machine only) or 0.0.0.0 (every interface)"
        ) from None
    sockets: list[socket.socket] = []
    seen: set[tuple[int, object]] = set()
    try:
        for family, kind, proto, _, address in infos:
            if (family, address[0]) in seen:
                continue
            seen.add((family, address[0]))
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio does: restarts need no wait
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if sockets[1:]:  # the port the first socket got (port 0: any free port)
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            try:
                sock.bind(address)
            except OSError as exc:
                raise ListenError(_why_not(settings, exc)) from None
    except BaseException:
        _close(sockets)
        raise
    return sockets


def _why_not(settings: Settings, exc: OSError) -> str:
    where = f"cannot listen on {settings.host}:{settings.port}"
    if settings.sources.get("port") == ENV:
        other_port = f"set LLM_SSE_PORT to a free one, e.g. LLM_SSE_PORT={_OTHER_PORT}"
    else:
        other_port = f'choose another with --port, e.g. make serve ARGS="--port {_OTHER_PORT}"'
    if exc.errno == errno.EADDRINUSE:
        return f"{where}: the port is in use (llm-sse already running, or another server); {other_port}"
    if exc.errno == errno.EACCES:
        return f"{where}: ports below 1024 need root; {other_port}"
    if exc.errno == errno.EADDRNOTAVAIL:
        return (
            f"{where}: {settings.host} is not an address of this machine; "
            f"set {settings.name_of('host')} to 127.0.0.1 (this machine only) or 0.0.0.0 (every interface)"
        )
    return f"{where}: {exc.strerror or exc}"


def url_of(host: str, port: int) -> str:
    """Where a person points the browser: a wildcard address is reached on loopback."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    try:
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
    except ValueError:
        pass  # a host name
    return f"http://{host}:{port}/"


def _close(sockets: Sequence[socket.socket]) -> None:
    for sock in sockets:
        sock.close()


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
