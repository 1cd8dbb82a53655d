"""Resumable streams over HTTP: start one, read it again, cancel it.

* ``start_resumable`` -- a ``POST /api/chat`` with ``"resumable": true``: a
  generation that outlives its connection, followed by that connection from
  its first frame;
* ``GET /api/streams/{id}`` -- replay after ``Last-Event-ID`` (or
  ``?after=N``), then follow live (EventSource-compatible);
* ``POST /api/streams/{id}/cancel`` -- stop the generation.

A stream is opened with its resume token (``X-Resume-Token``, or ``?token=``
for an EventSource, which cannot set headers); a wrong token is answered like
an unknown id.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable
from contextlib import AsyncExitStack
from typing import Any, TypeVar

from aiohttp import web

from ..chat import ChatRequest
from ..errors import ApiError
from ..http_edges import refuse_while_draining
from ..protect import LIMITER
from ..resume.follower import Follower
from ..resume.framelog import FramesExpired
from ..resume.generation import StreamCancelled
from ..resume.memory import LocalSource, StreamNotFound
from ..resume.source import SourceUnavailable
from ..streamlog import StreamRecord
from .caller import client_of
from .keys import METRICS, PROXIES, REGISTRY, RESUMABLE, ROUTER, SETTINGS

T = TypeVar("T")

# Stream ids are ``stream.registry.new_stream_id``: 22 URL-safe base64 characters.
_STREAM_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
_MAX_EVENT_ID_DIGITS = 18


async def start_resumable(
    request: web.Request,
    chat_request: ChatRequest,
    record: StreamRecord,
    identity: str,
    meta_extra: dict[str, Any] | None,
) -> web.StreamResponse:
    """Start a generation that outlives this connection, and follow it from its first frame."""
    app = request.app
    streams = app[RESUMABLE]
    slot = AsyncExitStack()
    await slot.enter_async_context(app[LIMITER].stream(identity, record.id))  # a refusal creates nothing
    try:
        generation, token = streams.create(chat_request, app[ROUTER], record, meta_extra)
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


async def _store_call(call: Awaitable[T]) -> T:
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
