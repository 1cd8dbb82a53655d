"""The application: its state, its routes, its life (start-up and cleanup), and its runner.

Routes:

* ``POST /api/chat`` -- a chat answered as an event stream (``web.chat``);
* ``GET /api/streams/{id}`` / ``POST /api/streams/{id}/cancel`` -- resumable
  streams (``web.resume``);
* ``GET /api/models`` -- the models of every configured provider;
* ``POST /v1/chat/completions`` / ``GET /v1/models`` -- the OpenAI-compatible
  API (``web.openai``);
* ``POST /api/ui-chat`` / ``GET /api/ui-chat/{id}/stream`` -- the Vercel AI
  SDK's ``useChat`` (``web.uichat``);
* ``OPTIONS`` on the API routes -- CORS preflights (``sse.protect``);
* ``GET /healthz`` / ``/readyz`` / ``/metrics`` / ``/openapi.json`` -- for
  operators (``web.ops``);
* ``GET /`` and ``GET /<file>`` -- the chat page (``web.page``).

The protections (API keys, CORS, rate and stream limits) are wired in from
``sse.protect``; every error leaves through ``web.boundary``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from ..heap import HeapTrimmer
from ..http_edges import EdgeRunner, expect_handler, runner_options
from ..metrics import create_metrics
from ..protect import (
    API_KEYS,
    CORS,
    LIMITER,
    add_cors_headers,
    auth_middleware,
    build_limiter,
    close_limiter,
    load_api_keys,
    preflight,
    start_limiter,
)
from ..providers import Provider, select_providers
from ..redis_client import RedisClients
from ..resume.memory import ResumableStreams
from ..routing import ProviderRouter
from ..settings import Settings
from ..stream.registry import StreamRegistry
from ..streamlog import StreamObserver
from .boundary import Handler, error_boundary, no_route
from .chat import chat
from .keys import METRICS, OBSERVERS, PROVIDERS, PROXIES, REDIS, REGISTRY, RESUMABLE, ROUTER, SELECTION, SETTINGS
from .models import models
from .openai import chat_completions, list_models, retrieve_model
from .ops import healthz, metrics, openapi_document, readyz
from .page import static_file
from .resume import stream_cancel, stream_resume
from .uichat import ui_chat, ui_chat_resume

log = logging.getLogger("llm_sse.server")


def create_app(settings: Settings, providers: list[Provider] | None = None) -> web.Application:
    """Build the application.  Without ``providers``, they are chosen at start-up.

    Raises ``SettingsError`` when the key file cannot be used or the Redis
    client is missing: a misconfigured guard must stop the start, not open the API.
    """
    api_keys = load_api_keys(settings)
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[error_boundary, auth_middleware])
    app[SETTINGS] = settings
    registry = app[REGISTRY] = StreamRegistry()
    collected = app[METRICS] = create_metrics(lambda: len(registry.streams))
    observers: list[StreamObserver] = [collected.stream_finished]
    app[OBSERVERS] = observers
    app[PROXIES] = settings.proxy_networks
    app[API_KEYS] = api_keys
    app[CORS] = settings.cors
    redis = app[REDIS] = RedisClients(settings)
    app[LIMITER] = build_limiter(settings, redis)
    app[RESUMABLE] = ResumableStreams(settings, registry, observers, redis)
    if providers is not None:
        app[PROVIDERS] = providers
        app[SELECTION] = "given by the caller"
    # Redis first: if it cannot be reached, no provider has been started (and left open).
    app.on_startup.append(_start_resumable)
    app.on_startup.append(_start_providers)
    app.on_startup.append(start_limiter)
    app.cleanup_ctx.append(_trim_heap)
    app.on_cleanup.append(_close_resumable)
    app.on_cleanup.append(_close_providers)
    app.on_cleanup.append(close_limiter)
    app.on_cleanup.append(_close_redis)  # last: the limiter and resumable streams share its clients
    app.on_response_prepare.append(add_cors_headers)
    add_routes(app)
    return app


async def _trim_heap(app: web.Application) -> AsyncIterator[None]:
    """Give the memory of ended streams back to the OS after bursts (``sse.heap``), for the app's life."""
    registry = app[REGISTRY]
    task = asyncio.create_task(HeapTrimmer(lambda: registry.ended).run())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def add_routes(app: web.Application) -> None:
    routes: list[tuple[str, str, Handler]] = [
        ("POST", "/api/chat", chat),
        ("GET", "/api/models", models),
        ("GET", "/api/streams/{id}", stream_resume),
        ("POST", "/api/streams/{id}/cancel", stream_cancel),
        ("OPTIONS", "/api/chat", preflight),
        ("OPTIONS", "/api/models", preflight),
        ("OPTIONS", "/api/streams/{id}", preflight),
        ("OPTIONS", "/api/streams/{id}/cancel", preflight),
        ("POST", "/api/ui-chat", ui_chat),
        ("GET", "/api/ui-chat/{id}/stream", ui_chat_resume),
        ("OPTIONS", "/api/ui-chat", preflight),
        ("OPTIONS", "/api/ui-chat/{id}/stream", preflight),
        ("POST", "/v1/chat/completions", chat_completions),
        ("GET", "/v1/models", list_models),
        ("GET", "/v1/models/{model}", retrieve_model),
        ("OPTIONS", "/v1/chat/completions", preflight),
        ("OPTIONS", "/v1/models", preflight),
        ("OPTIONS", "/v1/models/{model}", preflight),
        ("GET", "/healthz", healthz),
        ("GET", "/readyz", readyz),
        ("GET", "/metrics", metrics),
        ("GET", "/openapi.json", openapi_document),
        ("GET", "/", static_file),
        # Everything but the APIs: a GET to /api/chat must be a 405, not a missing file.
        ("GET", r"/{path:(?!api/|v1/).+}", static_file),
    ]
    for method, path, handler in routes:
        if method == "GET":  # and HEAD, as aiohttp's add_get does
            app.router.add_get(path, handler, expect_handler=expect_handler)
        else:
            app.router.add_route(method, path, handler, expect_handler=expect_handler)
    # Last: whatever no route takes, so that even then our Expect handling and
    # error format apply (aiohttp's own 404/405 would answer an odd Expect as text).
    app.router.add_route("*", "/{tail:.*}", no_route, expect_handler=expect_handler)


async def _start_providers(app: web.Application) -> None:
    if PROVIDERS in app:
        for provider in app[PROVIDERS]:
            await provider.start()
    else:
        app[PROVIDERS], app[SELECTION] = await select_providers(app[SETTINGS])
    providers: list[Provider] = app[PROVIDERS]
    app[ROUTER] = ProviderRouter(providers, cooldown=app[SETTINGS].provider_cooldown)
    log.info(
        "providers ready",
        extra={"providers": [p.name for p in app[PROVIDERS]], "why": app[SELECTION]},
    )


async def _start_resumable(app: web.Application) -> None:
    await app[RESUMABLE].start()


async def _close_resumable(app: web.Application) -> None:
    await app[RESUMABLE].close()


async def _close_redis(app: web.Application) -> None:
    await app[REDIS].close()


async def _close_providers(app: web.Application) -> None:
    for provider in app.get(PROVIDERS, []):
        await provider.close()


def make_runner(app: web.Application, *, shutdown_timeout: float = 5.0) -> web.AppRunner:
    """The runner every caller must use: it turns on handler cancellation.

    With it, aiohttp cancels a handler the moment its client disconnects,
    which is how a stream notices Stop while its upstream is silent.

    Request bodies are not decompressed (where aiohttp lets us say so): no
    browser compresses a fetch body, decompression is where zip bombs live,
    and a body that fails to decompress would otherwise be refused by the HTTP
    parser in plain text before our error handling sees it.  ``chat`` answers
    a ``Content-Encoding`` with a 415 instead.
    """
    options: dict[str, Any] = {"handler_cancellation": True, "access_log": None, "shutdown_timeout": shutdown_timeout}
    if "auto_decompress" in inspect.signature(web.RequestHandler.__init__).parameters:
        options["auto_decompress"] = False
    return EdgeRunner(app, **options, **runner_options())  # sse/http_edges.py: idle bounds, malformed HTTP
