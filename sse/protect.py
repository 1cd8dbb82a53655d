"""The protections at the HTTP edge: API keys, CORS, and the stream limiter's life.

The decisions live in the core (``auth``, ``cors``, ``limits``,
``injection``); this module wires them into aiohttp:

* ``auth_middleware`` -- ``/api/*`` and ``/v1/*`` need a valid key when keys are set; a
  missing and a wrong key get the same 401, so a caller learns nothing about
  which it was.  Preflights (``OPTIONS``) carry no key and pass.
* ``add_cors_headers`` -- an ``on_response_prepare`` hook: every answer
  under ``/api/`` (JSON, errors, and the event stream, whose headers go out
  late in ``sse.stream.writer``) gets its CORS headers as it is prepared, once per
  response, never per token.
* ``preflight`` -- ``OPTIONS`` on the API routes.
* ``start_limiter`` / ``close_limiter`` -- build the limiter (Redis when
  ``REDIS_URL`` is set) on start-up and close it on cleanup.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from .auth import ApiKeys, BadKey, check_key, parse_key_file
from .cors import CorsPolicy
from .errors import ApiError
from .limits import Backend, MemoryBackend, StreamLimiter
from .redis_client import MissingRedis, RedisClients, redis_url
from .settings import Settings, SettingsError

log = logging.getLogger("llm_sse.protect")

API_KEYS = web.AppKey("api_keys", ApiKeys)
CORS = web.AppKey("cors", CorsPolicy)
LIMITER = web.AppKey("limiter", StreamLimiter)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Paths that stay open when keys are required: health checks, the page, the API's description.
PROTECTED_PREFIX = ("/api/", "/v1/")
# By route (its canonical path): what a cross-origin page may do there.
PREFLIGHT_METHODS = {
    "/api/chat": ("POST", "OPTIONS"),
    "/api/models": ("GET", "OPTIONS"),
    "/api/streams/{id}": ("GET", "OPTIONS"),
    "/api/streams/{id}/cancel": ("POST", "OPTIONS"),
    "/api/ui-chat": ("POST", "OPTIONS"),
    "/api/ui-chat/{id}/stream": ("GET", "OPTIONS"),
    "/v1/chat/completions": ("POST", "OPTIONS"),
    "/v1/models": ("GET", "OPTIONS"),
    "/v1/models/{model}": ("GET", "OPTIONS"),
}


def load_api_keys(settings: Settings) -> ApiKeys:
    """Keys from the setting and the key file; ``SettingsError`` says what is wrong (never the key)."""
    keys = list(settings.api_key_list)
    if settings.api_keys_file:
        path = Path(settings.api_keys_file)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SettingsError(f"{settings.name_of('api_keys_file')}: cannot read {path}: {exc}") from None
        file_keys = parse_key_file(text)
        if not file_keys:
            # An empty file would silently open the API: refuse to start instead.
            raise SettingsError(f"{settings.name_of('api_keys_file')}: {path} holds no key")
        keys += file_keys
    try:
        return ApiKeys(check_key(key, "API keys") for key in keys)
    except BadKey as exc:
        raise SettingsError(str(exc)) from None


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="llm-sse"'}


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    keys = request.app[API_KEYS]
    guarded = keys.required and request.path.startswith(PROTECTED_PREFIX) and request.method != "OPTIONS"
    if guarded and key_id_of(request) is None:
        raise Unauthorized("a valid API key is needed: send it as 'Authorization: Bearer <key>'")
    return await handler(request)


def key_id_of(request: web.Request) -> str | None:
    """The id of the request's valid API key; None without keys or without a valid one.

    Computed again where needed rather than stored on the request: hashing a
    header is microseconds, and it keeps to aiohttp's typed request storage
    on every aiohttp version the service supports.
    """
    keys = request.app[API_KEYS]
    return keys.check(request.headers.get("Authorization")) if keys.required else None


async def add_cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: CORS headers for every API answer, the event stream included."""
    if not request.path.startswith(PROTECTED_PREFIX) and request.path != "/openapi.json":
        return
    policy = request.app[CORS]
    for name, value in policy.headers(request.headers.get("Origin")).items():
        if name == "Vary" and "Vary" in response.headers:
            if "origin" not in response.headers["Vary"].lower():
                response.headers["Vary"] += ", Origin"
            continue
        response.headers.setdefault(name, value)


async def preflight(request: web.Request) -> web.Response:
    """``OPTIONS`` on an API route: the CORS preflight, or a plain ``Allow`` answer."""
    resource = request.match_info.route.resource
    methods = PREFLIGHT_METHODS[resource.canonical if resource is not None else request.path]
    origin = request.headers.get("Origin")
    if origin is None:
        return web.Response(status=204, headers={"Allow": ", ".join(methods)})
    policy = request.app[CORS]
    if not policy.allows(origin):
        raise ApiError(
            "this origin may not call the API from a browser (see LLM_SSE_CORS_ORIGINS)",
            status=403,
            code="origin_not_allowed",
        )
    return web.Response(status=204, headers=policy.preflight_headers(origin, methods))


def build_limiter(settings: Settings, redis: RedisClients) -> StreamLimiter:
    """The limiter: in Redis when ``REDIS_URL`` is set (shared by every instance), else in this process."""
    limits = settings.limits
    shared: Backend | None = None
    url = redis_url(settings)
    if url and limits.enabled:
        from .redis_limits import RedisBackend

        try:
            shared = RedisBackend(redis.get(url), limits, timeout=settings.redis_timeout)
        except MissingRedis as exc:
            raise SettingsError(str(exc)) from None
    return StreamLimiter(limits, MemoryBackend(limits), shared)


async def start_limiter(app: web.Application) -> None:
    await app[LIMITER].check()


async def close_limiter(app: web.Application) -> None:
    if LIMITER in app:
        await app[LIMITER].close()
