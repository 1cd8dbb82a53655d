"""A fake OpenRouter (or any OpenAI-compatible server): a real aiohttp server on loopback.

Faithful where it matters to a relay (see tests/fixtures/openai,
tests/fixtures/openrouter and tests/fixtures/SOURCES.md):

* ``POST {prefix}/chat/completions`` answers ``text/event-stream``, chunked,
  each chunk one ``data: {compact json}`` block and a blank line, written as it
  is produced; ``: OPENROUTER PROCESSING`` comments before the first chunk and
  between chunks; the finish chunk twice, the second with ``usage``; then
  ``data: [DONE]``;
* recorded transcripts are replayed byte for byte (``Script.transcript``), one
  write per event block, or in pieces of ``split`` bytes;
* errors before the stream are real statuses with ``{"error": {"code",
  "message"}}`` (``Script.http`` replays a recorded one), with headers such as
  ``Retry-After``; errors after it are an ``error`` chunk and no ``[DONE]``;
* ``GET {prefix}/models`` lists models in OpenRouter's shape;
* with ``api_key`` set, a request without ``Authorization: Bearer <key>`` gets
  OpenRouter's 401;
* closing the connection is recorded, so a test can await it.

Tests script an answer per request (``push``) or per model (``route``) from
the same steps as the fake Ollama (``Raw``, ``Gate``, ``Sleep``, ``Drop``,
``Hang``) plus ``Data`` and ``Comment``.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from tests.fakes.server import ScriptedServer
from tests.fakes.steps import Drop, Gate, Hang, Raw, Sleep, play, write

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
MODEL = "openai/gpt-4o-mini"
KEEPALIVE = ": OPENROUTER PROCESSING"

__all__ = [
    "Comment",
    "Data",
    "Drop",
    "FakeOpenAI",
    "Gate",
    "Hang",
    "Raw",
    "Script",
    "Sleep",
    "chunks",
    "tool_call_chunks",
]


@dataclass
class Data:
    """One ``data:`` event holding compact JSON (or a raw string such as ``[DONE]``)."""

    obj: Any

    def encode(self) -> bytes:
        text = self.obj if isinstance(self.obj, str) else json.dumps(self.obj, separators=(",", ":"))
        return b"data: " + text.encode() + b"\n\n"


@dataclass
class Comment:
    """A comment line (a keep-alive) and its blank line."""

    text: str = KEEPALIVE

    def encode(self) -> bytes:
        return self.text.encode() + b"\n\n"


DONE = Data("[DONE]")

Step = Data | Comment | Raw | Gate | Sleep | Drop | Hang


@dataclass
class Script:
    """A whole answer: a status (non-200 is answered at once with ``body``) and steps."""

    steps: list[Step] = field(default_factory=list)
    status: int = 200
    body: bytes = b""
    content_type: str = "text/event-stream"
    headers: dict[str, str] = field(default_factory=dict)
    split: int | None = None

    @classmethod
    def transcript(cls, name: str, *, whole: bool = False, split: int | None = None) -> Script:
        """Replay ``tests/fixtures/<name>`` byte for byte: one write per event block,
        or the whole file in one write (``whole``), or in ``split``-byte pieces."""
        data = (FIXTURES / name).read_bytes()
        if whole:
            return cls([Raw(data)], split=split)
        blocks = re.split(rb"(?<=\n\n)", data)
        return cls([Raw(block) for block in blocks if block], split=split)

    @classmethod
    def http(cls, name: str, *, headers: dict[str, str] | None = None) -> Script:
        """Replay a recorded error answer (``.http``: status line, headers, body)."""
        data = (FIXTURES / name).read_bytes()
        head, _, body = data.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode().split("\r\n")
        recorded: dict[str, str] = {}
        for line in header_lines:
            key, _, value = line.partition(":")
            if key.lower() != "content-length":
                recorded[key.strip()] = value.strip()
        content_type = recorded.pop(next(k for k in recorded if k.lower() == "content-type"))
        return cls(
            status=int(status_line.split()[1]),
            body=body,
            content_type=content_type,
            headers={**recorded, **(headers or {})},
        )

    @classmethod
    def error(cls, status: int, message: str, *, headers: dict[str, str] | None = None) -> Script:
        """OpenRouter's error answer: ``{"error": {"code": status, "message": ...}}``."""
        body = json.dumps({"error": {"code": status, "message": message}}, separators=(",", ":")).encode()
        return cls(status=status, body=body, content_type="application/json", headers=dict(headers or {}))


def chunk(
    model: str = MODEL,
    *,
    content: str | None = "",
    reasoning: str | None = None,
    finish_reason: str | None = None,
    usage: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One chunk in OpenRouter's shape (``provider``, ``native_finish_reason``)."""
    delta: dict[str, Any] = {"content": content, "role": "assistant"}
    if reasoning is not None:
        delta["reasoning"] = reasoning
    obj: dict[str, Any] = {
        "id": "gen-1778031306-UD7bR0I1JNCsPvVzlXat",
        "object": "chat.completion.chunk",
        "created": 1778031306,
        "model": model,
        "provider": "Azure",
    }
    if error is not None:
        obj["error"] = error
    obj["choices"] = [
        {"index": 0, "delta": delta, "finish_reason": finish_reason, "native_finish_reason": finish_reason}
    ]
    if usage is not None:
        obj["usage"] = usage
    return obj


def chunks(
    pieces: Iterable[str],
    *,
    model: str = MODEL,
    reasoning: Iterable[str] = (),
    finish_reason: str = "stop",
    keepalives: int = 1,
) -> list[Step]:
    """An ordinary OpenRouter answer: keep-alives, reasoning, text, the finish chunk twice, [DONE]."""
    steps: list[Step] = [Comment() for _ in range(keepalives)]
    steps += [Data(chunk(model, reasoning=piece)) for piece in reasoning]
    count = 0
    for piece in pieces:
        count += 1
        steps.append(Data(chunk(model, content=piece)))
    usage = {"prompt_tokens": 21, "completion_tokens": count, "total_tokens": 21 + count, "cost": 0.0000049}
    steps.append(Data(chunk(model, finish_reason=finish_reason)))
    steps.append(Data(chunk(model, finish_reason=finish_reason, usage=usage)))
    steps.append(DONE)
    return steps


def tool_call_chunks(
    calls: Iterable[tuple[str, str, Iterable[str]]],
    *,
    model: str = "gpt-4o-mini-2024-07-18",
    finish_reason: str = "tool_calls",
) -> list[Step]:
    """Tool calls as OpenAI streams them (tests/fixtures/openai/chat_stream_tool_call.sse).

    Each call is ``(id, name, argument pieces)``: its first chunk carries
    ``index``, ``id``, ``type``, ``function.name`` and empty arguments (the
    first call's also ``role`` and ``content: null``), then one chunk per
    piece under the same ``index``; then the finish chunk, the usage chunk
    (``choices: []``) and ``[DONE]``.  Every chunk carries ``usage: null``.
    """
    head = {"id": "chatcmpl-DcLQgGuIIwnMHqZMRCOwZMLir5SkK", "object": "chat.completion.chunk", "created": 1778031210}
    head.update({"model": model, "service_tier": "default", "system_fingerprint": "fp_d0a1738203"})

    def openai_chunk(delta: dict[str, Any], reason: str | None = None) -> Data:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}
        return Data({**head, "choices": [choice], "usage": None})

    steps: list[Step] = []
    count = 0
    for index, (call_id, name, pieces) in enumerate(calls):
        fragment = {"index": index, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
        if index == 0:
            steps.append(
                openai_chunk({"role": "assistant", "content": None, "tool_calls": [fragment], "refusal": None})
            )
        else:
            steps.append(openai_chunk({"tool_calls": [fragment]}))
        for piece in pieces:
            count += 1
            steps.append(openai_chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}))
    steps.append(openai_chunk({}, finish_reason))
    usage = {"prompt_tokens": 67, "completion_tokens": count, "total_tokens": 67 + count}
    steps.append(Data({**head, "choices": [], "usage": usage}))
    steps.append(DONE)
    return steps


@dataclass
class Recorded:
    """What the fake saw of one request."""

    path: str
    body: dict[str, Any]
    headers: CIMultiDict[str]
    started: float = field(default_factory=time.monotonic)
    finished: bool = False
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)


class FakeOpenAI(ScriptedServer[Script]):
    """Start with ``await fake.start()``; its ``url`` is a base URL like OpenRouter's."""

    def __init__(self, *, prefix: str = "/api/v1", api_key: str | None = None) -> None:
        super().__init__([MODEL, "meta-llama/llama-3.2-3b-instruct"])
        self.prefix = prefix
        self.api_key = api_key
        self.requests: list[Recorded] = []
        self.model_requests = 0
        self.url = ""
        self.request_arrived = asyncio.Event()

    # -- lifecycle

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post(self.prefix + "/chat/completions", self._chat)
        app.router.add_get(self.prefix + "/models", self._models)
        self.url = f"http://127.0.0.1:{await self.serve(app)}{self.prefix}"
        return self.url

    # -- handlers

    def _unauthorized(self, request: web.Request) -> web.Response | None:
        if self.api_key is None or request.headers.get("Authorization") == f"Bearer {self.api_key}":
            return None
        body = json.dumps({"error": {"message": "No cookie auth credentials found", "code": 401}})
        return web.Response(status=401, body=body.encode(), content_type="application/json")

    async def _models(self, request: web.Request) -> web.Response:
        self.model_requests += 1
        denied = self._unauthorized(request)
        if denied is not None:
            return denied
        data = [
            {"id": name, "name": name, "created": 1721260800, "context_length": 128000, "architecture": {}}
            for name in self.models
        ]
        return web.json_response({"data": data})

    def _script_for(self, body: dict[str, Any]) -> Script:
        model = body.get("model", "")
        script = self.scripted(model)
        if script is not None:
            return script
        if model not in self.models:
            return Script.error(400, f"{model} is not a valid model ID")
        return Script(chunks(["Hello", " from", " the", " fake", " router", "."], model=model))

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        record = Recorded(request.path, body, CIMultiDict(request.headers))
        self.requests.append(record)
        self.request_arrived.set()
        denied = self._unauthorized(request)
        if denied is not None:
            return denied
        script = self._script_for(body)
        if script.status != 200:
            response = web.Response(status=script.status, body=script.body, headers=script.headers)
            response.content_type = script.content_type
            return response
        response = web.StreamResponse(headers={"Content-Type": script.content_type, **script.headers})
        try:
            await response.prepare(request)
            for step in script.steps:
                await self._play(step, response, request, script.split)
            await response.write_eof()
            record.finished = True
            return response
        except (asyncio.CancelledError, ConnectionError):
            record.disconnected.set()
            raise

    async def _play(self, step: Step, response: web.StreamResponse, request: web.Request, split: int | None) -> None:
        if isinstance(step, (Data, Comment)):
            await write(response, step.encode(), split)
        else:
            await play(step, response, request, split)
