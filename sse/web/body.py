"""Reading a JSON request body within bounds: its type, no compression, its size, its time."""

from __future__ import annotations

from aiohttp import web

from ..errors import ApiError
from ..http_edges import read_body
from ..settings import Settings


async def read_json_body(request: web.Request, settings: Settings) -> bytes:
    """The raw body of a JSON request, or the error that says what is wrong with it.

    415 for another content type or any ``Content-Encoding`` (decompression
    is where zip bombs live), 413 over ``max_body_bytes`` -- all before the
    client is invited to send it (``Expect: 100-continue``) -- then
    ``http_edges.read_body``: 408 when it does not arrive within
    ``body_timeout``, 400 when it cannot be decoded.
    """
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
    return await read_body(request, settings.body_timeout)  # 100 Continue only now, if asked
