"""The OpenAI-compatible API: ``/v1/chat/completions`` and ``/v1/models``.

For the clients people already hold -- OpenAI's SDKs and every tool that
takes an "OpenAI base URL" (``http://host:8080/v1``).  A request is parsed
into the same ``ChatRequest`` as ``/api/chat`` (``sse.openai_request``) and
answered by the same stream (``web.chat.answer``), only encoded as
``chat.completion.chunk`` events (``sse.encoders.openai``): fallback, the
timeouts, heartbeats, Stop, the limits, keys, CORS and the injection
detector apply exactly as on ``/api/chat``.  ``stream: false`` gathers the
same events into one ``chat.completion`` (``sse.stream.completion``).

Every error under ``/v1/`` -- a bad body, a missing key, a limit, an
upstream failure before the stream -- is answered in OpenAI's shape
(``{"error": {"message", "type", "param", "code"}}``, see ``web.boundary``),
so the SDKs raise their typed errors.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from ..chat import parse_json_body
from ..encoders.openai import OpenAICompletionEncoder, OpenAIStreamEncoder
from ..errors import ApiError
from ..http_edges import refuse_while_draining
from ..openai_request import parse_openai_request
from ..protect import LIMITER
from ..stream.completion import Completion
from .body import read_json_body
from .caller import caller_of
from .chat import answer, inspect_prompt, new_record
from .keys import OBSERVERS, PROVIDERS, PROXIES, REGISTRY, ROUTER, SETTINGS


async def chat_completions(request: web.Request) -> web.StreamResponse:
    """``POST /v1/chat/completions``: streamed (``stream: true``) or in one body."""
    app = request.app
    settings = app[SETTINGS]
    if app[REGISTRY].draining:
        return refuse_while_draining(request, app[PROXIES])
    raw = await read_json_body(request, settings)
    parsed = parse_openai_request(parse_json_body(raw), settings.request_limits)
    del raw
    created = int(time.time())
    if parsed.stream:
        encoder = OpenAIStreamEncoder(model=parsed.model, created=created, include_usage=parsed.include_usage)
        return await answer(request, parsed.chat, encoder)
    finding = await inspect_prompt(parsed.chat, settings.injection)
    caller = caller_of(request)
    record = new_record(parsed.chat, caller, finding.flags, log_prompt=settings.log_prompts)
    completion = Completion(
        parsed.chat,
        app[ROUTER],
        settings,
        record,
        OpenAICompletionEncoder(model=parsed.model, created=created),
        registry=app[REGISTRY],
        observers=app[OBSERVERS],
    )
    async with app[LIMITER].stream(caller.identity, record.id):
        return await completion.run()


async def list_models(request: web.Request) -> web.Response:
    """``GET /v1/models``: every provider's models in OpenAI's list shape (``owned_by``: the provider)."""
    return web.json_response({"object": "list", "data": await _models(request)})


async def retrieve_model(request: web.Request) -> web.Response:
    """``GET /v1/models/{model}``: one model, or OpenAI's 404."""
    name = request.match_info["model"]
    for model in await _models(request):
        if model["id"] == name:
            return web.json_response(model)
    raise ApiError(f"the model {name!r} does not exist here", status=404, code="model_not_found", field="model")


async def _models(request: web.Request) -> list[dict[str, Any]]:
    providers = request.app[PROVIDERS]
    results = await asyncio.gather(*(p.models() for p in providers), return_exceptions=True)
    data: list[dict[str, Any]] = []
    seen: set[str] = set()
    failure: BaseException | None = None
    for result in results:
        if isinstance(result, BaseException):
            if not isinstance(result, Exception):
                raise result
            failure = failure or result
            continue
        for model in result:
            if model.name not in seen:  # the first provider that offers a name answers it
                seen.add(model.name)
                data.append({"id": model.name, "object": "model", "created": 0, "owned_by": model.provider})
    if not data and failure is not None:
        message = failure.message if isinstance(failure, ApiError) else str(failure)
        raise ApiError(f"no provider could list its models: {message}", status=502, code="upstream_unavailable")
    return data
