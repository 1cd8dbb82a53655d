"""The Vercel AI SDK's chat endpoint: ``POST /api/ui-chat``, for ``useChat``.

A React or Next.js app points ``DefaultChatTransport`` at it
(``api: "https://host/api/ui-chat"``) and gets the UI message stream
(``sse.encoders.uimessage``) with no adapter.  The request -- the chat's id
and its UI messages with parts, plus ``model``, ``think``, ``options``,
``tools`` and ``tool_choice`` from the transport's ``body`` -- is parsed
into the same ``ChatRequest`` as ``/api/chat`` (``sse.uimessage_request``)
and answered by the same stream (``web.chat.answer``): every guarantee,
limit and protection of ``/api/chat`` applies.  Errors before the stream are
llm-sse's JSON (``useChat`` shows the body as ``error.message``); after it,
an ``error`` part.

``GET /api/ui-chat/{id}/stream`` is where ``useChat({resume: true})``
reconnects (the SDK's convention).  These streams are not kept for resuming
(llm-sse's resumable streams are ``/api/chat``'s), so it answers 204,
the SDK's "nothing to resume", and the page shows the chat as it was.
"""

from __future__ import annotations

from aiohttp import web

from ..chat import parse_json_body
from ..encoders.uimessage import UIMessageEncoder
from ..errors import ApiError
from ..http_edges import refuse_while_draining
from ..uimessage_request import CHAT_ID, parse_ui_request
from .body import read_json_body
from .chat import answer
from .keys import PROXIES, REGISTRY, SETTINGS


async def ui_chat(request: web.Request) -> web.StreamResponse:
    """``POST /api/ui-chat``: a ``useChat`` request answered as a UI message stream."""
    settings = request.app[SETTINGS]
    if request.app[REGISTRY].draining:
        return refuse_while_draining(request, request.app[PROXIES])
    raw = await read_json_body(request, settings)
    parsed = parse_ui_request(parse_json_body(raw), settings.request_limits)
    del raw
    return await answer(request, parsed.chat, UIMessageEncoder(message_id=parsed.message_id))


async def ui_chat_resume(request: web.Request) -> web.StreamResponse:
    """``GET /api/ui-chat/{id}/stream``: 204, nothing to resume."""
    if not CHAT_ID.fullmatch(request.match_info["id"]):
        raise ApiError("no such chat", status=404, code="not_found")
    return web.Response(status=204, headers={"Cache-Control": "no-cache"})
