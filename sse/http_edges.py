"""The HTTP connection below the routes: idle and head waits, malformed requests, Expect, draining.

aiohttp's defaults suit a server that trusts its clients; this module sets
the service's own, in one place (``make_runner`` uses ``EdgeRunner``):

* **keep-alive** -- an idle connection is closed after ``KEEPALIVE_TIMEOUT``
  (75 s) instead of aiohttp's 3,630 s; the nginx site closes its idle
  upstream connections after 60 s, first, so a request never races a close.
  A connection that opened, or sent part of a request head, and then went
  silent is closed on the same bound.
* **no lingering** -- after an answer given before the body was read (a
  413 on an endless chunked body, a 401), aiohttp would read and discard
  the rest of the body for up to 10 s; the connection is closed at once.
* **malformed HTTP** -- aiohttp logs each at error level with a traceback
  whose message quotes the offending bytes (a header line carrying an API
  key or a resume token), and answers it in plain text.  ``EdgeRequestHandler``
  logs one info line naming the client and the kind of fault -- never the
  bytes -- and answers the API's JSON error.
* **Expect: 100-continue** -- the ``100 Continue`` goes out only when the
  handler is about to read the body (``read_body``), after the API key,
  the content type and the declared length were checked: a request the
  headers already refuse gets its 401, 413 or 415 without being invited to
  send its body.
* **draining** -- a new chat or resume on an instance that is shutting down
  is answered 503 ``shutting_down``; when it came from a trusted proxy
  (``LLM_SSE_TRUSTED_PROXIES``), the connection is closed unanswered
  instead, which is what makes nginx hand the request to the next instance
  (deploy/nginx/llm-sse.conf, ``proxy_next_upstream``) while every 503 the
  service *decides* reaches the client as it is.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import HttpVersion11, web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler, RequestPayloadError

from .clientip import Network, is_trusted
from .errors import ApiError

log = logging.getLogger("llm_sse.http")

# Longer than the nginx site's upstream keep-alive (nginx's default 60 s), so
# nginx always closes an idle connection first; and the bound on a request
# head that stops half way.
KEEPALIVE_TIMEOUT = 75.0

_LOW_LEVEL_CODES = {
    400: "bad_request",
    413: "body_too_large",
    414: "uri_too_long",
    431: "headers_too_large",
}


def runner_options() -> dict[str, Any]:
    """The connection settings every runner of the service passes to aiohttp."""
    return {"keepalive_timeout": KEEPALIVE_TIMEOUT, "lingering_time": 0.0}


# -- malformed HTTP


def fault_reason(exc: BaseException | None) -> str:
    """What is wrong with a malformed request, without any of its bytes.

    aiohttp's messages quote the offending line after a colon
    (``Invalid header value char:\\n\\n  b'Authorization: Bearer ...'``,
    ``Got more than 8190 bytes when reading: b'...'``); only the part before
    it is kept, and only if it is plain printable text.
    """
    message = getattr(exc, "message", "") if isinstance(exc, HttpProcessingError) else ""
    reason = str(message).split(":", 1)[0].strip()
    if not reason or not reason.isprintable() or len(reason) > 80 or "'" in reason or '"' in reason:
        return type(exc).__name__ if exc is not None else "malformed request"
    return reason


class EdgeRequestHandler(RequestHandler):
    """aiohttp's connection handler, answering a malformed request quietly, in JSON."""

    def handle_error(
        self,
        request: Any,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status >= 500 or (exc is not None and not isinstance(exc, HttpProcessingError)):
            return super().handle_error(request, status, exc, message)
        reason = fault_reason(exc)
        log.info(
            "malformed request",
            extra={"fields": {"client": request.remote, "status": status, "reason": reason}},
        )
        if request.writer.output_size > 0:  # as aiohttp: too late for an answer
            raise ConnectionError("the answer had started; the connection is closed")
        error = ApiError(
            f"the request is not valid HTTP: {reason}", status=status, code=_LOW_LEVEL_CODES.get(status, "bad_request")
        )
        response = web.json_response(error.body(), status=status)
        response.force_close()
        return response


class EdgeServer(web.Server):
    """aiohttp's low-level server, making ``EdgeRequestHandler`` connections."""

    def __call__(self) -> RequestHandler:
        return EdgeRequestHandler(self, loop=self._loop, **self._kwargs)


class EdgeRunner(web.AppRunner):
    """``web.AppRunner`` whose connections are ``EdgeRequestHandler``; otherwise the same."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = EdgeServer  # same state, one method more specific
        return server


# -- Expect: 100-continue


async def expect_handler(request: web.Request) -> web.StreamResponse | None:
    """``Expect``: ``100-continue`` is answered by ``read_body``; any other is a JSON 417.

    aiohttp's own handler sends ``100 Continue`` before any middleware or
    handler looked at the request, inviting the body of a request it will
    refuse anyway.
    """
    if request.version != HttpVersion11:
        return None
    if request.headers.get("Expect", "").lower() == "100-continue":
        return None
    error = ApiError("only 'Expect: 100-continue' is understood", status=417, code="expectation_failed")
    return web.json_response(error.body(), status=error.status)


async def send_continue(request: web.Request) -> None:
    """``100 Continue`` if the client waits for it; call once, right before reading the body."""
    if (
        request.version == HttpVersion11
        and request.headers.get("Expect", "").lower() == "100-continue"
        and request.writer.output_size == 0
    ):
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # the answer itself has not started


async def read_body(request: web.Request, within: float) -> bytes:
    """The whole body (at most the app's ``client_max_size``, else a 413), within ``within`` seconds."""
    await send_continue(request)
    try:
        async with asyncio.timeout(within):
            return await request.read()
    except TimeoutError:
        raise ApiError("the request body did not arrive in time", status=408, code="request_timeout") from None
    except RequestPayloadError:
        # E.g. "Content-Encoding: gzip" on a body that is not gzip: the client's fault, not a 500.
        raise ApiError(
            "the body could not be decoded; check its Content-Encoding", status=400, code="invalid_body", field="body"
        ) from None


# -- draining


def refuse_while_draining(request: web.Request, proxies: tuple[Network, ...]) -> web.StreamResponse:
    """A draining instance's answer to a new chat or resume.

    From a trusted proxy: no answer at all -- the connection is closed before
    any work, so nginx passes the request to the next instance (it cannot
    tell this 503 from the others by status, and must not replay those).
    From anyone else: 503 ``shutting_down`` with ``Retry-After``.
    """
    if request.remote is not None and is_trusted(request.remote, proxies):
        log.info("closed unanswered while draining", extra={"fields": {"path": request.path}})
        request.protocol.force_close()
        return web.Response(status=503)  # never sent: its connection is closed
    raise ApiError("the server is restarting; try again in a moment", status=503, code="shutting_down", retry_after=1)
