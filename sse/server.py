"""The HTTP service: routes, the error boundary, and the application's life.

Routes:

* ``POST /api/chat`` -- a chat answered as an event stream (``sse.relay``);
* ``GET /api/models`` -- the models of every configured provider;
* ``GET /healthz`` / ``GET /readyz`` -- liveness and readiness;
* ``GET /metrics`` -- Prometheus metrics (with the ``metrics`` extra);
* ``GET /`` and ``GET /<file>`` -- the chat page from ``static/``.

Every error a client or an upstream can cause leaves as JSON
(``{"error": {"code", "message"}}``) with its proper status; an unexpected
exception is logged with its traceback and answered with a plain 500, never
the traceback itself.
"""

from __future__ import annotations

import asyncio
import logging
import mimetypes
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from .chat import parse_chat_request, parse_json_body
from .clientip import client_address, parse_networks
from .errors import ApiError
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .metrics import Metrics, create_metrics
from .providers import Provider, select_providers
from .relay import ChatStream, StreamRegistry, new_stream_id
from .routing import ProviderRouter
from .settings import Settings, split_list
from .streamlog import StreamObserver, StreamRecord

log = logging.getLogger("llm_sse.server")

SETTINGS = web.AppKey("settings", Settings)
PROVIDERS = web.AppKey[list[Provider]]("providers")
ROUTER = web.AppKey[ProviderRouter[Provider]]("router")
REGISTRY = web.AppKey("registry", StreamRegistry)
OBSERVERS = web.AppKey[list[StreamObserver]]("observers")
SELECTION = web.AppKey("selection", str)
PROXIES = web.AppKey("proxies", tuple)
METRICS = web.AppKey[Metrics]("metrics")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_STATUS_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "body_too_large",
    415: "unsupported_media_type",
}

for _type, _ext in (
    ("text/javascript", ".js"),
    ("text/javascript", ".mjs"),
    ("text/css", ".css"),
    ("image/svg+xml", ".svg"),
    ("application/manifest+json", ".webmanifest"),
):
    mimetypes.add_type(_type, _ext)

PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Model output is untrusted: even if some of it slipped into the DOM as
    # markup, no inline script or foreign resource could run or load.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
}


def create_app(settings: Settings, providers: list[Provider] | None = None) -> web.Application:
    """Build the application.  Without ``providers``, they are chosen at start-up."""
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[error_boundary])
    app[SETTINGS] = settings
    registry = app[REGISTRY] = StreamRegistry()
    collected = app[METRICS] = create_metrics(lambda: len(registry.streams))
    observers: list[StreamObserver] = [collected.stream_finished]
    app[OBSERVERS] = observers
    app[PROXIES] = parse_networks(split_list(settings.trusted_proxies))
    if providers is not None:
        app[PROVIDERS] = providers
        app[SELECTION] = "given by the caller"
    app.on_startup.append(_start_providers)
    app.on_cleanup.append(_close_providers)
    app.router.add_post("/api/chat", chat)
    app.router.add_get("/api/models", models)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/", static_file)
    # Everything but the API: a GET to /api/chat must be a 405, not a missing file.
    app.router.add_get(r"/{path:(?!api/).+}", static_file)
    return app


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


async def _close_providers(app: web.Application) -> None:
    for provider in app.get(PROVIDERS, []):
        await provider.close()


# -- the error boundary


@web.middleware
async def error_boundary(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as error:
        return _error_response(request, error)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _STATUS_CODES.get(exc.status, "http_error")
        message = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
        if exc.status == 413:
            message = f"the request body is larger than {request.app[SETTINGS].max_body_bytes} bytes"
        response = _error_response(request, ApiError(message or exc.reason, status=exc.status, code=code))
        if "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("unhandled error", extra={"path": request.path})
        return _error_response(request, ApiError("internal error; the server log has details"))


def _error_response(request: web.Request, error: ApiError) -> web.Response:
    request.app[METRICS].request_rejected(error.code)
    log.info(
        "request rejected",
        extra={"path": request.path, "status": error.status, "code": error.code, "client": client_of(request)},
    )
    return web.json_response(error.body(), status=error.status, headers=error.headers())


def client_of(request: web.Request) -> str:
    return client_address(request.remote, request.headers.get("X-Forwarded-For"), request.app[PROXIES])


# -- handlers


async def chat(request: web.Request) -> web.StreamResponse:
    # The request's body and its parsed JSON are locals of ``_chat_stream``
    # alone, so they are freed before the stream runs, not held for its life.
    stream = await _chat_stream(request)
    return await stream.run()


async def _chat_stream(request: web.Request) -> ChatStream:
    """Check and read a chat request; the stream that will answer it."""
    app = request.app
    settings = app[SETTINGS]
    registry = app[REGISTRY]
    if registry.draining:
        raise ApiError(
            "the server is restarting; try again in a moment", status=503, code="shutting_down", retry_after=1
        )
    if request.content_type != "application/json":
        raise ApiError(
            "send the request as JSON (Content-Type: application/json)", status=415, code="unsupported_media_type"
        )
    if request.content_length is not None and request.content_length > settings.max_body_bytes:
        raise web.HTTPRequestEntityTooLarge(max_size=settings.max_body_bytes, actual_size=request.content_length)
    try:
        async with asyncio.timeout(settings.body_timeout):
            raw = await request.read()
    except TimeoutError:
        raise ApiError("the request body did not arrive in time", status=408, code="request_timeout") from None
    body = parse_json_body(raw)
    chat_request = parse_chat_request(body, settings.request_limits)
    record = StreamRecord(
        id=new_stream_id(),
        client=client_of(request),
        input_chars=chat_request.input_chars,
        prompt=(chat_request.prompt or chat_request.as_messages()[-1].content) if settings.log_prompts else None,
    )
    return ChatStream(
        request,
        chat_request,
        app[ROUTER],
        settings,
        record,
        registry=registry,
        observers=app[OBSERVERS],
    )


async def models(request: web.Request) -> web.Response:
    """Every provider's models, each tagged with its provider; failures listed."""
    providers = request.app[PROVIDERS]
    results = await asyncio.gather(*(p.models() for p in providers), return_exceptions=True)
    listed: list[dict[str, Any]] = []
    errors: list[dict[str, str]] = []
    for provider, result in zip(providers, results, strict=True):
        if isinstance(result, BaseException):
            if not isinstance(result, Exception):
                raise result
            message = result.message if isinstance(result, ApiError) else str(result)
            errors.append({"provider": provider.name, "message": message})
            continue
        listed.extend({"name": m.name, "provider": m.provider, **m.details} for m in result)
    if not listed and errors:
        raise ApiError(
            f"no provider could list its models: {errors[0]['message']}", status=502, code="upstream_unavailable"
        )
    return web.json_response({"models": listed, "default": await _default_model(providers, results), "errors": errors})


async def _default_model(providers: list[Provider], listings: list[Any]) -> str | None:
    """The model a request naming none gets: the first provider that answered decides.

    Each provider has its own default (and name for the service-wide one), so
    the first listed name would be wrong when the first provider is down.
    """
    for provider, listing in zip(providers, listings, strict=True):
        if isinstance(listing, BaseException):
            continue
        try:
            return await provider.resolve_model(None)
        except ApiError:
            continue
    return None


async def healthz(request: web.Request) -> web.Response:
    """The process is up and its event loop answers."""
    return web.json_response({"status": "ok", "streams": len(request.app[REGISTRY].streams)})


async def readyz(request: web.Request) -> web.Response:
    """Ready when not shutting down and at least one provider can serve."""
    app = request.app
    providers = app[PROVIDERS]
    checks = await asyncio.gather(*(p.readiness() for p in providers))
    report = [
        {"provider": p.name, "ready": r.ready, "detail": r.detail} for p, r in zip(providers, checks, strict=True)
    ]
    draining = app[REGISTRY].draining
    ready = any(r.ready for r in checks) and not draining
    body: dict[str, Any] = {"status": "ready" if ready else "not_ready", "providers": report}
    if draining:
        body["detail"] = "shutting down"
    return web.json_response(body, status=200 if ready else 503)


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text exposition of the service's counters and histograms."""
    collected = request.app[METRICS]
    if not collected.available:
        raise ApiError(
            "metrics need the 'metrics' extra: pip install 'llm-sse[metrics]'", status=501, code="metrics_unavailable"
        )
    return web.Response(body=collected.render(), headers={"Content-Type": METRICS_CONTENT_TYPE})


async def static_file(request: web.Request) -> web.StreamResponse:
    """Serve the chat page and its files from the static folder.

    HTML is revalidated on every load (``no-cache``) so a deploy shows at once;
    files under ``vendor/`` carry their version in their path and are cached
    for a year.
    """
    relative = request.match_info.get("path", "") or "index.html"
    parts = relative.split("/")
    if any(not part or part.startswith(".") for part in parts):
        # No "..", no hidden files, no empty segments: the path stays inside.
        raise ApiError(f"no such page: /{relative}", status=404, code="not_found")
    path = Path(request.app[SETTINGS].static_dir, *parts)
    # Checked here, not left to FileResponse: its 404 would bypass the error boundary.
    if not await asyncio.to_thread(path.is_file):
        raise ApiError(f"no such page: /{relative}", status=404, code="not_found")
    headers = dict(PAGE_HEADERS) if path.suffix == ".html" else {"X-Content-Type-Options": "nosniff"}
    if relative.startswith("vendor/"):
        headers["Cache-Control"] = "public, max-age=31536000, immutable"
    else:
        headers.setdefault("Cache-Control", "no-cache")
    return web.FileResponse(path, headers=headers)


def make_runner(app: web.Application, *, shutdown_timeout: float = 5.0) -> web.AppRunner:
    """The runner every caller must use: it turns on handler cancellation.

    With it, aiohttp cancels a handler the moment its client disconnects,
    which is how a stream notices Stop while its upstream is silent.
    """
    return web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=shutdown_timeout)
