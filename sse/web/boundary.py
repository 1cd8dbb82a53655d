"""The error boundary: every error leaves as JSON with its status, whatever raised it.

``error_boundary`` (a middleware) turns an ``ApiError`` -- and aiohttp's own
HTTP errors -- into ``{"error": {"code", "message"}}`` (under ``/v1/``,
OpenAI's ``{"error": {"message", "type", "param", "code"}}``) with the right status,
logs one "request rejected" line, and counts it; an unexpected exception is
logged with its traceback and answered with a plain 500, never the traceback.
``no_route`` answers what no route takes (404, or 405 with ``Allow``).
What lies below the routes (``Expect``, malformed HTTP, idle connections,
draining) is ``sse.http_edges``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ..encoders import openai
from ..errors import ApiError
from ..protect import key_id_of
from .caller import client_of
from .keys import METRICS, SETTINGS

log = logging.getLogger("llm_sse.server")

OPENAI_PREFIX = "/v1/"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_STATUS_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "body_too_large",
    415: "unsupported_media_type",
}


@web.middleware
async def error_boundary(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as error:
        return error_response(request, error)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = error_response(request, _as_api_error(request, exc))
        if "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("unhandled error", extra={"path": request.path})
        return error_response(request, ApiError("internal error; the server log has details"))


def _as_api_error(request: web.Request, exc: web.HTTPException) -> ApiError:
    code = _STATUS_CODES.get(exc.status, "http_error")
    message = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
    field = None
    if exc.status == 413:
        message = f"the request body is larger than {request.app[SETTINGS].max_body_bytes} bytes"
        field = "body"
    return ApiError(message or exc.reason, status=exc.status, code=code, field=field)


ErrorShape = Callable[[ApiError], tuple[int, bytes]]


def error_response(request: web.Request, error: ApiError, shape: ErrorShape | None = None) -> web.Response:
    """The JSON answer to a refused request, logged (without secrets) and counted.

    ``shape`` writes the body in another protocol's error format (an
    encoder's ``error_response``): an endpoint speaking that protocol catches
    its ``ApiError`` and answers through here, so the log line and the count
    stay the same for every protocol.
    """
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
    if shape is None and request.path.startswith(OPENAI_PREFIX):
        # OpenAI's SDKs read their own error shape, and raise their typed errors from it --
        # for every error under /v1/, a missing key or an unknown route included.
        shape = openai.error_response
    if shape is None:
        return web.json_response(error.body(), status=error.status, headers=error.headers())
    status, body = shape(error)
    headers = {"Content-Type": "application/json; charset=utf-8", **error.headers()}
    return web.Response(body=body, status=status, headers=headers)


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
