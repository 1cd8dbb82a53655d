"""The chat API: ``POST /api/chat``, a chat answered as an event stream.

``chat`` reads and parses the request; ``answer`` turns any parsed chat into
a stream -- the injection check, the record, the caller's slot in the
limits, then the direct stream or a resumable one -- so an endpoint that
speaks another protocol only parses its own body and picks its encoder.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from .. import injection
from ..chat import ChatRequest, parse_chat_request, parse_json_body
from ..encoders.base import Encoder
from ..errors import ApiError
from ..http_edges import refuse_while_draining
from ..protect import LIMITER
from ..stream.chat_stream import ChatStream
from ..stream.registry import new_stream_id
from ..streamlog import StreamRecord
from .body import read_json_body
from .caller import Caller, caller_of
from .keys import OBSERVERS, PROXIES, REGISTRY, ROUTER, SETTINGS
from .resume import start_resumable

# Above this many characters the detector runs in a worker thread: it costs
# about 1 µs a character (docs/injection.md), so a conversation at the input limit would hold the
# event loop -- every other stream's tokens -- for tens of milliseconds.  The
# regex engine keeps the GIL, but a thread gives the loop its turn every
# switch interval (5 ms) instead of after the whole scan.
SCAN_OFF_LOOP_CHARS = 4096


async def chat(request: web.Request) -> web.StreamResponse:
    """``POST /api/chat``: llm-sse's own request and frames."""
    app = request.app
    settings = app[SETTINGS]
    if app[REGISTRY].draining:
        return refuse_while_draining(request, app[PROXIES])
    raw = await read_json_body(request, settings)
    chat_request = parse_chat_request(parse_json_body(raw), settings.request_limits)
    # The body is not needed again: free it now rather than hold it for the
    # stream's whole life (every open stream would pay for its request).
    del raw
    return await answer(request, chat_request)


async def answer(request: web.Request, chat_request: ChatRequest, encoder: Encoder | None = None) -> web.StreamResponse:
    """Answer a parsed chat as a stream, in ``encoder``'s protocol (llm-sse's frames by default).

    The slot in the limits is held for the stream's whole life -- a resumable
    stream's generation, not its first connection -- and released however it
    ends.  Only llm-sse's own protocol has resumable streams.
    """
    app = request.app
    settings = app[SETTINGS]
    finding = await inspect_prompt(chat_request, settings.injection)
    flags = finding.flags
    caller = caller_of(request)
    record = new_record(chat_request, caller, flags, log_prompt=settings.log_prompts)
    # Where each pattern is, so a page can show it; the log line gets the names only.
    meta_extra: dict[str, Any] | None = (
        {"flags": list(flags), "findings": [hit.as_json() for hit in finding.hits]} if flags else None
    )
    resumable = chat_request.resumable if chat_request.resumable is not None else settings.resumable
    if resumable and encoder is None:
        return await start_resumable(request, chat_request, record, caller.identity, meta_extra)
    stream = ChatStream(
        request,
        chat_request,
        app[ROUTER],
        settings,
        record,
        registry=app[REGISTRY],
        observers=app[OBSERVERS],
        encoder=encoder,
        meta_extra=meta_extra,
    )
    async with app[LIMITER].stream(caller.identity, record.id):
        return await stream.run()


def new_record(chat_request: ChatRequest, caller: Caller, flags: tuple[str, ...], *, log_prompt: bool) -> StreamRecord:
    """The stream's log record; the prompt only when the operator asked for prompts in the log."""
    prompt = (chat_request.prompt or chat_request.as_messages()[-1].content) if log_prompt else None
    record = StreamRecord(id=new_stream_id(), client=caller.client, input_chars=chat_request.input_chars, prompt=prompt)
    if caller.key_id is not None:
        record.extra["key_id"] = caller.key_id
    if flags:
        record.extra["flags"] = list(flags)
    return record


async def inspect_prompt(chat_request: ChatRequest, mode: str) -> injection.Finding:
    """The injection detector's finding; in ``block`` mode a finding is a 400."""
    if mode == "off":
        return injection.Finding()
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
    return finding
