"""A fake Ollama: a real aiohttp server on loopback that speaks Ollama's wire format.

Faithful where it matters to a relay (see tests/fixtures/ and Ollama's
docs/api.md):

* ``application/x-ndjson``, chunked, one compact JSON object and ``\\n`` per
  line, written as it is produced; Go's encoder escapes ``<``, ``>`` and ``&``
  as ``\\u003c`` and friends, and so does this fake;
* intermediate lines carry ``model``, ``created_at`` and ``response`` (generate)
  or ``message`` (chat), ``done: false``; the last line carries ``done_reason``
  and the durations in nanoseconds, and on ``/api/generate`` a ``context``;
* errors before the first line are real statuses with ``{"error": ...}`` and no
  trailing newline; errors after it are one ``{"error": ...}`` line with the
  status left at 200, and no done line;
* closing the connection cancels the request (recorded, so a test can await
  it); nothing is sent while the "model loads".

Tests script an answer per request (``push``) or per model name (``route``):
a list of steps that can split lines and UTF-8 characters across writes,
pause on a gate the test opens, stall, drop the connection, or send garbage.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.server import ScriptedServer
from tests.fakes.steps import Drop, Gate, Hang, Raw, Sleep, play, write

MODEL = "llama3.2:latest"
CREATED_AT = "2025-08-02T22:05:23.4452655Z"


def go_json(obj: Any) -> bytes:
    """Encode like Go's json.Marshal: compact, HTML characters escaped."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").encode()


# -- steps of a scripted answer


@dataclass
class Line:
    """One NDJSON line (an object), written in one write."""

    obj: dict[str, Any]


Step = Line | Raw | Gate | Sleep | Drop | Hang


@dataclass
class Script:
    """A whole answer: a status (non-200 is answered at once) and steps."""

    steps: list[Step] = field(default_factory=list)
    status: int = 200
    error: str | None = None  # body message for a non-200 status
    split: int | None = None  # write every step in pieces of this many bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Recorded:
    """What the fake saw of one request."""

    path: str
    body: dict[str, Any]
    started: float = field(default_factory=time.monotonic)
    lines_sent: int = 0
    finished: bool = False
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)
    disconnected_at: float | None = None
    peer: tuple[str, int] | None = None  # the client's address: the same for requests on one pooled connection


def token_lines(
    pieces: Iterable[str],
    *,
    chat: bool = True,
    model: str = MODEL,
    thinking: Iterable[str] = (),
    done_reason: str = "stop",
    last_text: str = "",
) -> list[Step]:
    """An ordinary answer: thinking lines, token lines, then the done line."""
    steps: list[Step] = []
    for piece in thinking:
        if chat:
            steps.append(Line(_chat_line(model, "", thinking=piece)))
        else:
            steps.append(
                Line({"model": model, "created_at": CREATED_AT, "response": "", "thinking": piece, "done": False})
            )
    count = 0
    for piece in pieces:
        count += 1
        if chat:
            steps.append(Line(_chat_line(model, piece)))
        else:
            steps.append(Line({"model": model, "created_at": CREATED_AT, "response": piece, "done": False}))
    steps.append(
        Line(
            done_line(
                chat=chat,
                model=model,
                eval_count=count + (1 if last_text else 0),
                done_reason=done_reason,
                text=last_text,
            )
        )
    )
    return steps


def tool_call_lines(
    calls: Iterable[tuple[str | None, str, dict[str, Any]]],
    *,
    model: str = MODEL,
    thinking: Iterable[str] = (),
    text_before: Iterable[str] = (),
) -> list[Step]:
    """An answer that calls tools, as Ollama's /api/chat streams it.

    Each call is ``(id, name, arguments)``; it comes whole, in one line of its
    own with ``content: ""``, ``function.index`` and the arguments as an
    object (``id`` None: an older server that sends none).  The done line
    says ``done_reason: "stop"``, as Ollama does after tool calls.
    """
    steps: list[Step] = [Line(_chat_line(model, "", thinking=piece)) for piece in thinking]
    steps += [Line(_chat_line(model, piece)) for piece in text_before]
    for index, (call_id, name, arguments) in enumerate(calls):
        call: dict[str, Any] = {}
        if call_id is not None:
            call["id"] = call_id
        call["function"] = {"index": index, "name": name, "arguments": arguments}
        line = _chat_line(model, "")
        line["message"]["tool_calls"] = [call]
        steps.append(Line(line))
    steps.append(Line(done_line(model=model, eval_count=15)))
    return steps


def _chat_line(model: str, content: str, *, thinking: str | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if thinking is not None:
        message["thinking"] = thinking
    return {"model": model, "created_at": CREATED_AT, "message": message, "done": False}


def done_line(
    *, chat: bool = True, model: str = MODEL, eval_count: int = 3, done_reason: str = "stop", text: str = ""
) -> dict[str, Any]:
    line: dict[str, Any] = {"model": model, "created_at": CREATED_AT}
    if chat:
        line["message"] = {"role": "assistant", "content": text}
    else:
        line["response"] = text
    line.update({"done": True, "done_reason": done_reason})
    if not chat:
        line["context"] = [128006, 882, 128007, 271, 9906, 128009]
    line.update(
        {
            "total_duration": 3102987500,
            "load_duration": 126633200,
            "prompt_eval_count": 26,
            "prompt_eval_duration": 95113000,
            "eval_count": eval_count,
            "eval_duration": 250_000_000,
        }
    )
    return line


class FakeOllama(ScriptedServer[Script]):
    """Start with ``await fake.start()``; its ``url`` is an Ollama base URL."""

    def __init__(self) -> None:
        super().__init__([MODEL, "qwen3:4b"])
        self.requests: list[Recorded] = []
        self.version = "0.5.1"
        self.url = ""
        self.active = 0
        self._idle = asyncio.Event()
        self._idle.set()

    # -- lifecycle

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/api/chat", self._stream)
        app.router.add_post("/api/generate", self._stream)
        app.router.add_get("/api/tags", self._tags)
        app.router.add_get("/api/version", self._version)
        self.url = f"http://127.0.0.1:{await self.serve(app)}"
        return self.url

    async def wait_idle(self, within: float = 5.0) -> None:
        """Wait until no request is being answered."""
        async with asyncio.timeout(within):
            await self._idle.wait()

    # -- handlers

    async def _tags(self, request: web.Request) -> web.Response:
        models = [
            {
                "name": name,
                "model": name,
                "modified_at": "2025-05-04T17:37:44.706015396-07:00",
                "size": 2019393189,
                "digest": "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
                "details": {
                    "format": "gguf",
                    "family": "llama",
                    "parameter_size": "3.2B",
                    "quantization_level": "Q4_K_M",
                },
            }
            for name in self.models
        ]
        return web.Response(body=go_json({"models": models}), content_type="application/json")

    async def _version(self, request: web.Request) -> web.Response:
        return web.Response(body=go_json({"version": self.version}), content_type="application/json")

    def _script_for(self, path: str, body: dict[str, Any]) -> Script:
        model = body.get("model", "")
        script = self.scripted(model)
        if script is not None:
            return script
        if model not in self.models:
            return Script(status=404, error=f"model '{model}' not found")
        chat = path == "/api/chat"
        return Script(token_lines(["Hello", " from", " the", " fake", " model", "."], chat=chat, model=model))

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        record = Recorded(request.path, body)
        record.peer = request.transport.get_extra_info("peername") if request.transport else None
        self.requests.append(record)
        script = self._script_for(request.path, body)
        if script.status != 200:
            # Gin's c.JSON: the real status, compact JSON, no trailing newline.
            return web.Response(
                status=script.status,
                body=go_json({"error": script.error or "error"}),
                headers={"Content-Type": "application/json; charset=utf-8", **script.headers},
            )
        self.active += 1
        self._idle.clear()
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson", **script.headers})
        try:
            await response.prepare(request)
            for step in script.steps:
                await self._play(step, response, request, script.split, record)
            await response.write_eof()
            record.finished = True
            return response
        except (asyncio.CancelledError, ConnectionError):
            record.disconnected_at = time.monotonic()
            record.disconnected.set()
            raise
        finally:
            self.active -= 1
            if not self.active:
                self._idle.set()

    async def _play(
        self, step: Step, response: web.StreamResponse, request: web.Request, split: int | None, record: Recorded
    ) -> None:
        if isinstance(step, Line):
            record.lines_sent += 1
            await write(response, go_json(step.obj) + b"\n", split)
        else:
            await play(step, response, request, split)
