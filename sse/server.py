"""The HTTP service: routes, the error boundary, and the application's life.

Routes:

* ``POST /api/chat`` -- a chat answered as an event stream (``sse.relay``; a
  resumable one through ``sse.resumable`` and ``sse.follower``);
* ``GET /api/streams/{id}`` -- a resumable stream replayed after
  ``Last-Event-ID`` (or ``?after=N``), then followed live;
* ``POST /api/streams/{id}/cancel`` -- stop a resumable stream's generation;
* ``GET /api/models`` -- the models of every configured provider;
* ``OPTIONS /api/chat`` / ``OPTIONS /api/models`` -- CORS preflights;
* ``GET /healthz`` / ``GET /readyz`` -- liveness and readiness;
* ``GET /metrics`` -- Prometheus metrics (with the ``metrics`` extra);
* ``GET /openapi.json`` -- the API's OpenAPI description (``sse.openapi``);
* ``GET /`` and ``GET /<file>`` -- the chat page from ``static/``.

The protections (API keys, CORS, rate and stream limits, the injection
detector) are wired in here from ``sse.protect``; see README's "Protection".

Every error a client or an upstream can cause leaves as JSON
(``{"error": {"code", "message"}}``) with its proper status; an unexpected
exception is logged with its traceback and answered with a plain 500, never
the traceback itself.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from aiohttp import web

from . import __version__, injection, openapi
from .chat import ChatRequest, parse_chat_request, parse_json_body
from .clientip import client_address, is_loopback, parse_networks
from .cors import CorsPolicy
from .errors import ApiError
from .follower import Follower, LocalSource, SourceUnavailable
from .framelog import FramesExpired
from .http_edges import EdgeRunner, expect_handler, read_body, refuse_while_draining, runner_options
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .metrics import Metrics, create_metrics
from .protect import (
    API_KEYS,
    CORS,
    LIMITER,
    add_cors_headers,
    auth_middleware,
    build_limiter,
    close_limiter,
    key_id_of,
    load_api_keys,
    preflight,
    start_limiter,
)
from .providers import Provider, select_providers
from .relay import ChatStream, StreamRegistry, new_stream_id
from .resumable import StreamCancelled
from .resumestore import ResumableStreams, StreamNotFound
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
RESUMABLE = web.AppKey("resumable", ResumableStreams)

# Stream ids are ``relay.new_stream_id``: 22 URL-safe base64 characters.
_STREAM_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
_MAX_EVENT_ID_DIGITS = 18

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_STATUS_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "body_too_large",
    415: "unsupported_media_type",
}

# The page's own file types, set explicitly: aiohttp's FileResponse guesses
# with a private MimeTypes table (so mimetypes.add_type does not reach it),
# and Python 3.11's table still says application/javascript.  Text types carry
# their charset so nothing depends on the browser's guess.
STATIC_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
    ".txt": "text/plain; charset=utf-8",
}

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
    app[PROXIES] = parse_networks(split_list(settings.trusted_proxies))
    app[API_KEYS] = api_keys
    app[CORS] = CorsPolicy(split_list(settings.cors_origins))
    app[LIMITER] = build_limiter(settings)
    app[RESUMABLE] = ResumableStreams(settings, registry, observers)
    if providers is not None:
        app[PROVIDERS] = providers
        app[SELECTION] = "given by the caller"
    # Redis first: if it cannot be reached, no provider has been started (and left open).
    app.on_startup.append(_start_resumable)
    app.on_startup.append(_start_providers)
    app.on_startup.append(start_limiter)
    app.on_cleanup.append(_close_resumable)
    app.on_cleanup.append(_close_providers)
    app.on_cleanup.append(close_limiter)
    app.on_response_prepare.append(add_cors_headers)
    routes: list[tuple[str, str, Handler]] = [
        ("POST", "/api/chat", chat),
        ("GET", "/api/models", models),
        ("GET", "/api/streams/{id}", stream_resume),
        ("POST", "/api/streams/{id}/cancel", stream_cancel),
        ("OPTIONS", "/api/chat", preflight),
        ("OPTIONS", "/api/models", preflight),
        ("OPTIONS", "/api/streams/{id}", preflight),
        ("OPTIONS", "/api/streams/{id}/cancel", preflight),
        ("GET", "/healthz", healthz),
        ("GET", "/readyz", readyz),
        ("GET", "/metrics", metrics),
        ("GET", "/openapi.json", openapi_document),
        ("GET", "/", static_file),
        # Everything but the API: a GET to /api/chat must be a 405, not a missing file.
        ("GET", r"/{path:(?!api/).+}", static_file),
    ]
    for method, path, handler in routes:
        if method == "GET":  # and HEAD, as aiohttp's add_get does
            app.router.add_get(path, handler, expect_handler=expect_handler)
        else:
            app.router.add_route(method, path, handler, expect_handler=expect_handler)
    # Last: whatever no route takes, so that even then our Expect handling and
    # error format apply (aiohttp's own 404/405 would answer an odd Expect as text).
    app.router.add_route("*", "/{tail:.*}", no_route, expect_handler=expect_handler)
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


async def _start_resumable(app: web.Application) -> None:
    await app[RESUMABLE].start()


async def _close_resumable(app: web.Application) -> None:
    await app[RESUMABLE].close()


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
        field = None
        if exc.status == 413:
            message = f"the request body is larger than {request.app[SETTINGS].max_body_bytes} bytes"
            field = "body"
        as_api_error = ApiError(message or exc.reason, status=exc.status, code=code, field=field)
        response = _error_response(request, as_api_error)
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
    facts: dict[str, Any] = {"path": request.path, "status": error.status, "code": error.code}
    facts["client"] = client_of(request)
    key_id = key_id_of(request)
    if key_id is not None:
        facts["key_id"] = key_id
    if error.field is not None:
        facts["field"] = error.field
    facts.update(error.log_fields)
    log.info("request rejected", extra={"fields": facts})
    return web.json_response(error.body(), status=error.status, headers=error.headers())


def client_of(request: web.Request) -> str:
    return client_address(request.remote, request.headers.get("X-Forwarded-For"), request.app[PROXIES])


# -- handlers


async def no_route(request: web.Request) -> web.StreamResponse:
    """404, or 405 with ``Allow`` when another route takes the path with other methods."""
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        if resource is request.match_info.route.resource:
            continue
        match, methods = await resource.resolve(request)
        if match is None:
            allowed |= methods
    if allowed:
        raise web.HTTPMethodNotAllowed(request.method, allowed)
    raise web.HTTPNotFound()


async def chat(request: web.Request) -> web.StreamResponse:
    app = request.app
    settings = app[SETTINGS]
    registry = app[REGISTRY]
    if registry.draining:
        return refuse_while_draining(request, app[PROXIES])
    if request.content_type != "application/json":
        raise ApiError(
            "send the request as JSON (Content-Type: application/json)", status=415, code="unsupported_media_type"
        )
    if request.headers.get("Content-Encoding", "identity").strip().lower() != "identity":
        raise ApiError(
            "compressed request bodies are not accepted; send the JSON as it is",
            status=415,
            code="unsupported_media_type",
            field="Content-Encoding",
        )
    if request.content_length is not None and request.content_length > settings.max_body_bytes:
        raise web.HTTPRequestEntityTooLarge(max_size=settings.max_body_bytes, actual_size=request.content_length)
    raw = await read_body(request, settings.body_timeout)  # 100 Continue only now, if asked
    chat_request = parse_chat_request(parse_json_body(raw), settings.request_limits)
    # The body is not needed again: free it now rather than hold it for the
    # stream's whole life (every open stream would pay for its request).
    del raw
    flags = await _inspect_prompt(chat_request, settings.injection)
    client = client_of(request)
    key_id = key_id_of(request)
    record = StreamRecord(
        id=new_stream_id(),
        client=client,
        input_chars=chat_request.input_chars,
        prompt=(chat_request.prompt or chat_request.as_messages()[-1].content) if settings.log_prompts else None,
    )
    if key_id is not None:
        record.extra["key_id"] = key_id
    if flags:
        record.extra["meta"] = {"flags": list(flags)}
        record.extra["flags"] = list(flags)
    # Limits count per key when one is given (several people behind one NAT
    # each with a key), else per address.  The slot is held for the stream's
    # whole life -- a resumable stream's generation, not its first connection --
    # and released however it ends.
    identity = f"key:{key_id}" if key_id is not None else f"ip:{client}"
    resumable = chat_request.resumable if chat_request.resumable is not None else settings.resumable
    if resumable:
        return await _resumable_chat(request, chat_request, record, identity)
    stream = ChatStream(
        request,
        chat_request,
        app[ROUTER],
        settings,
        record,
        registry=registry,
        observers=app[OBSERVERS],
    )
    async with app[LIMITER].stream(identity, record.id):
        return await stream.run()


# Above this many characters the detector runs in a worker thread: it costs
# about 0.4 µs a character, so a conversation at the input limit would hold the
# event loop -- every other stream's tokens -- for tens of milliseconds.  The
# regex engine keeps the GIL, but a thread gives the loop its turn every
# switch interval (5 ms) instead of after the whole scan.
SCAN_OFF_LOOP_CHARS = 4096


async def _inspect_prompt(chat_request: ChatRequest, mode: str) -> tuple[str, ...]:
    """The injection detector's flags; in ``block`` mode a finding is a 400."""
    if mode == "off":
        return ()
    if chat_request.input_chars > SCAN_OFF_LOOP_CHARS:
        finding = await asyncio.to_thread(injection.scan_request, chat_request)
    else:
        finding = injection.scan_request(chat_request)
    if finding and mode == "block":
        error = ApiError(
            "the message looks like an attempt to override the model's instructions "
            f"({', '.join(finding.flags)}); rephrase it",
            status=400,
            code="prompt_rejected",
            field=finding.field,
        )
        error.log_fields["flags"] = list(finding.flags)
        raise error
    return finding.flags


async def _resumable_chat(
    request: web.Request, chat_request: ChatRequest, record: StreamRecord, identity: str
) -> web.StreamResponse:
    """Start a generation that outlives this connection, and follow it from its first frame."""
    app = request.app
    streams = app[RESUMABLE]
    slot = AsyncExitStack()
    await slot.enter_async_context(app[LIMITER].stream(identity, record.id))  # a refusal creates nothing
    try:
        generation, token = streams.create(chat_request, app[ROUTER], record)
    except BaseException:
        await slot.aclose()
        raise
    generation.hold_until_end(slot.aclose)
    follower = Follower(
        request,
        LocalSource(generation),
        0,
        app[SETTINGS],
        app[REGISTRY],
        kind="post",
        client=record.client,
        creator_meta=lambda: generation.creator_meta(token),
        early_error=lambda: generation.early_error,
        # Before ``meta`` the client has no token and can never resume: stop at once, as for any stream.
        left_early=lambda: generation.end(StreamCancelled("the client left before the stream started")),
        on_finish=app[METRICS].follower_finished,
        before_meta=lambda: streams.stored(generation),
    )
    generation.start()
    return await follower.run()


async def stream_resume(request: web.Request) -> web.StreamResponse:
    """Replay a resumable stream after the client's last frame, then follow it live (EventSource-compatible)."""
    app = request.app
    if app[REGISTRY].draining:
        return refuse_while_draining(request, app[PROXIES])
    stream_id = _stream_id(request)
    token = _resume_token(request)
    after = _after(request)
    source = await _store_call(app[RESUMABLE].open(stream_id, token))
    try:
        source.check(after)
    except FramesExpired as expired:
        raise ApiError(str(expired), status=410, code="frames_expired") from None
    if source.finished_after(after):
        # Nothing follows: a 204 is what stops an EventSource from reconnecting.
        return web.Response(status=204, headers={"Cache-Control": "no-cache"})
    follower = Follower(
        request,
        source,
        after,
        app[SETTINGS],
        app[REGISTRY],
        kind="resume",
        client=client_of(request),
        on_finish=app[METRICS].follower_finished,
    )
    return await follower.run()


async def stream_cancel(request: web.Request) -> web.Response:
    """Stop a resumable stream's generation now; its followers get an ``error`` frame ``cancelled``."""
    stream_id = _stream_id(request)
    token = _resume_token(request)
    status, state = await _store_call(request.app[RESUMABLE].cancel(stream_id, token))
    return web.json_response({"id": stream_id, "status": state}, status=status)


async def _store_call(call: Awaitable[Any]) -> Any:
    try:
        return await call
    except SourceUnavailable as exc:
        raise ApiError(str(exc), status=503, code="resume_unavailable", retry_after=1) from None


def _stream_id(request: web.Request) -> str:
    stream_id = request.match_info["id"]
    if not _STREAM_ID.fullmatch(stream_id):
        raise StreamNotFound()
    return stream_id


def _resume_token(request: web.Request) -> str:
    """The stream's token: ``X-Resume-Token``, or ``?token=`` for an EventSource (which cannot set headers)."""
    token = request.headers.get("X-Resume-Token") or request.query.get("token")
    if not token:
        raise ApiError(
            "this stream needs its resume token (from its meta frame): X-Resume-Token header or ?token=",
            status=401,
            code="resume_token_required",
        )
    return token


def _after(request: web.Request) -> int:
    """The last frame the client has: ``Last-Event-ID`` (what a reconnecting EventSource sends), else ``?after=``."""
    name, raw = "Last-Event-ID", request.headers.get("Last-Event-ID")
    if raw is None or not raw.strip():
        name, raw = "after", request.query.get("after", "0")
    raw = raw.strip()
    if not raw.isascii() or not raw.isdigit() or len(raw) > _MAX_EVENT_ID_DIGITS:
        raise ApiError(
            f"{name} must be a frame id (a whole number), got {raw[:40]!r}",
            status=400,
            code="invalid_request",
            field=name,
        )
    return int(raw)


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
    app = request.app
    return web.json_response({"status": "ok", "streams": len(app[REGISTRY].streams), "limits": app[LIMITER].stats()})


async def readyz(request: web.Request) -> web.Response:
    """Ready when not shutting down and at least one provider can serve.

    Each provider's detail names where its model server is (``Ollama 0.5.1 at
    http://10.0.0.7:11434``, a refused connection's address): only a caller
    on this machine gets it; anyone else learns which providers are ready.
    """
    app = request.app
    providers = app[PROVIDERS]
    checks = await asyncio.gather(*(p.readiness() for p in providers))
    local = is_loopback(client_of(request))
    report = [
        {"provider": p.name, "ready": r.ready, **({"detail": r.detail} if local else {})}
        for p, r in zip(providers, checks, strict=True)
    ]
    draining = app[REGISTRY].draining
    ready = any(r.ready for r in checks) and not draining
    body: dict[str, Any] = {"status": "ready" if ready else "not_ready", "providers": report}
    body["limits"] = app[LIMITER].state
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


async def openapi_document(request: web.Request) -> web.Response:
    """The API's OpenAPI 3.1 description, with this instance's real limits."""
    app = request.app
    document = openapi.build(app[SETTINGS], keys_required=app[API_KEYS].required, version=__version__)
    return web.json_response(document, headers={"Cache-Control": "no-cache"})


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
    if path.suffix in STATIC_TYPES:
        headers["Content-Type"] = STATIC_TYPES[path.suffix]
    if relative.startswith("vendor/"):
        headers["Cache-Control"] = "public, max-age=31536000, immutable"
    else:
        headers.setdefault("Cache-Control", "no-cache")
    return web.FileResponse(path, headers=headers)


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
