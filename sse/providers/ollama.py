"""Ollama: newline-delimited JSON from ``/api/chat`` and ``/api/generate``.

Wire facts this module relies on (Ollama's docs/api.md and server source):

* a message history goes to ``/api/chat`` (text in ``message.content``,
  reasoning in ``message.thinking``); a bare prompt goes to ``/api/generate``
  (``response`` / ``thinking``);
* the last line has ``done: true``, ``done_reason`` and durations in
  nanoseconds; it may itself carry the last piece of text, and on
  ``/api/generate`` a ``context`` token array that can be hundreds of KB (the
  line limit allows for it; it is never forwarded);
* an error before the first line is a real HTTP status with
  ``{"error": "..."}``; after it, the status stays 200 and one ``{"error"}``
  line ends the stream with no done line;
* an unknown model is a 404 whose wording varies by version, so we key on the
  status, not the text;
* Ollama sends nothing while a model loads: the relay's first-token timeout
  and heartbeats cover that;
* tools go in ``tools`` (OpenAI's function shape); a call comes back whole in
  one line's ``message.tool_calls`` (``function.arguments`` an object, an
  ``id`` only from newer servers), with ``done_reason: "stop"``; results go
  back as ``{"role": "tool", "content", "tool_name"}``.  Ollama has no
  ``tool_choice``: ``"none"`` is honoured by sending no tools, the others are
  the model's own choice.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from typing import Any

from ..chat import ChatRequest, Message
from ..errors import UpstreamDisconnected, UpstreamError
from ..events import Done, Event, Skipped, StreamError, Thinking, Token, ToolCall, Usage, coalesce
from ..ndjson import LineTooLong, NdjsonDecoder
from ..routing import ModelMap
from .base import ModelInfo, Readiness, token_count
from .http import DEFAULT_LIMITS, READ_BYTES, READ_ERRORS, HttpProvider, UpstreamLimits, dropped, open_stream

_NS = 1e-9
_NO_MESSAGE: dict[str, Any] = {}  # read, never written


class OllamaProvider(HttpProvider):
    """Streams from one Ollama server over one shared ``aiohttp.ClientSession``."""

    models_path = "/api/tags"
    no_models = "has no models installed; pull one first, e.g. 'ollama pull llama3.2'"

    def __init__(
        self,
        base_url: str,
        *,
        name: str = "ollama",
        default_model: str = "",
        models: ModelMap | None = None,
        limits: UpstreamLimits = DEFAULT_LIMITS,
    ) -> None:
        # ``default_model`` is the service-wide default; ``models`` (mapping and
        # Ollama's own default) takes precedence when given.
        super().__init__(
            name,
            base_url,
            model_map=models or ModelMap(fallback_default=default_model),
            limits=limits,
        )

    # -- models and health

    def parse_models(self, data: Any) -> list[ModelInfo]:
        entries = data.get("models") if isinstance(data, dict) else None
        models = []
        for entry in entries if isinstance(entries, list) else []:
            if not (isinstance(entry, dict) and isinstance(entry.get("name"), str)):
                continue
            details = entry.get("details")
            details = details if isinstance(details, dict) else {}
            info = {"parameter_size": details.get("parameter_size"), "family": details.get("family")}
            models.append(ModelInfo(entry["name"], self.name, {k: v for k, v in info.items() if v}))
        return models

    async def readiness(self) -> Readiness:
        try:
            data = await self.get_json("/api/version", min(self.limits.connect_timeout, 2.0))
        except UpstreamError as exc:
            return Readiness(False, exc.message)
        version = data.get("version", "?") if isinstance(data, dict) else "?"
        return Readiness(True, f"Ollama {version} at {self.base_url}")

    # -- streaming

    def _payload(self, request: ChatRequest, model: str) -> tuple[str, dict[str, Any]]:
        payload: dict[str, Any] = {"model": model, "stream": True}
        if request.messages is not None:
            path = "/api/chat"
            payload["messages"] = [_message(m) for m in request.messages]
            if request.tools and request.tool_choice != "none":
                payload["tools"] = [tool.as_openai() for tool in request.tools]
        else:
            path = "/api/generate"
            payload["prompt"] = request.prompt
        if request.options:
            payload["options"] = dict(request.options)
        if request.think is not None:
            payload["think"] = request.think
        return self.base_url + path, payload

    async def stream(self, request: ChatRequest, model: str) -> AsyncIterator[Event]:
        url, payload = self._payload(request, model)
        chat = request.messages is not None
        decoder = NdjsonDecoder(self.limits.max_line_bytes)
        calls = _Calls()
        name = self.name
        async with open_stream(self.session, url, payload, name=name) as upstream:
            if upstream.response.content_type in _PAGE_TYPES:
                raise _not_ollama(f"{name} answered {upstream.response.content_type}, not Ollama's NDJSON")
            # The loop runs once per network read: it reads the body itself
            # (no helper coroutine per read), and holds nothing of the last
            # read while it waits for the next (a thousand open streams would
            # each keep a chunk, a parsed line and its events alive).
            read = upstream.response.content.read
            started = False  # the answer's first event has been handed out
            held: Skipped | None = None  # lines skipped before it
            while True:
                try:
                    chunk = await read(READ_BYTES)
                except READ_ERRORS as exc:
                    raise dropped(name, exc) from None
                events, finished = _read_events(decoder, chunk, chat, name, calls)
                at_end = not chunk
                del chunk
                if finished and type(events[-1]) is Done:
                    upstream.complete = True
                if not started:
                    # Until the answer's first event, skipped lines are held
                    # back: lines that are all unreadable (an HTML page, a
                    # proxy's error) are no answer, and must fail before the
                    # stream starts, where the next provider can still be tried.
                    events, held = _hold_back_skipped(events, held)
                    started = bool(events)
                    if held is not None and at_end:
                        raise _not_ollama(
                            f"{name} answered {held.count} lines that are not Ollama's NDJSON "
                            f"(e.g. {held.sample[:80]!r})"
                        )
                events = coalesce(events)
                events.reverse()
                while events:
                    yield events.pop()
                if finished:
                    return
                if at_end:
                    raise UpstreamDisconnected(f"{name} ended the stream without its final line")


def _message(message: Message) -> dict[str, Any]:
    """A message as Ollama's /api/chat takes it (arguments as objects, results by tool name)."""
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        out["tool_calls"] = [
            {
                "id": call.id,
                "function": {"index": call.index, "name": call.name, "arguments": json.loads(call.arguments)},
            }
            for call in message.tool_calls
        ]
    if message.tool_name is not None:
        out["tool_name"] = message.tool_name
    if message.tool_call_id is not None:
        out["tool_call_id"] = message.tool_call_id
    return out


class _Calls:
    """The tool calls one answer has made so far (for made-up ids and the finish reason)."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    def read(self, raw: Any, out: list[Event]) -> None:
        """Append a ``ToolCall`` per well-formed entry of ``message.tool_calls``."""
        for entry in raw if isinstance(raw, list) else ():
            function = entry.get("function") if isinstance(entry, dict) else None
            if not isinstance(function, dict) or not isinstance(function.get("name"), str):
                out.append(Skipped(1, json.dumps(entry)[:200]))
                continue
            arguments = function.get("arguments")
            if not isinstance(arguments, str):
                arguments = json.dumps(
                    arguments if arguments is not None else {}, ensure_ascii=False, separators=(",", ":")
                )
            call_id = entry.get("id")
            if not isinstance(call_id, str) or not call_id:
                # Ollama's own format for the id it makes (newer servers send one).
                call_id = "call_" + secrets.token_hex(4)
            index = function.get("index")
            if not isinstance(index, int) or isinstance(index, bool) or index < self.count:
                index = self.count
            out.append(ToolCall(call_id, function["name"], arguments, index))
            self.count += 1


# What a captive portal, a login page or a misrouted proxy answers instead.
_PAGE_TYPES = frozenset({"text/html", "application/xhtml+xml"})


def _not_ollama(what: str) -> UpstreamError:
    return UpstreamError(f"{what}; is the Ollama URL right?", code="upstream_protocol", fallback=True)


def _hold_back_skipped(events: list[Event], held: Skipped | None) -> tuple[list[Event], Skipped | None]:
    """Before the answer's first event: set skipped lines aside, and put them right after that event.

    Returns the events to hand out and the skipped lines still held (None
    once they went out with the first event).
    """
    rest: list[Event] = []
    for event in events:
        if type(event) is Skipped:
            assert isinstance(event, Skipped)
            held = event if held is None else Skipped(held.count + event.count, held.sample)
        else:
            rest.append(event)
    if rest and held is not None:
        rest.insert(1, held)
        held = None
    return rest, held


def _read_events(
    decoder: NdjsonDecoder, chunk: bytes, chat: bool, name: str, calls: _Calls
) -> tuple[list[Event], bool]:
    """The events of one network read (``b""``: the body's end); True if the answer ended."""
    try:
        lines = decoder.feed(chunk) if chunk else decoder.close()
    except LineTooLong as exc:
        raise UpstreamError(f"{name} sent a {exc}", code="upstream_protocol") from None
    events: list[Event] = []
    finished = False
    for line in lines:
        if _map_line(line, chat, events, calls):
            finished = True
            break
    if decoder.skipped:
        events.insert(0, Skipped(decoder.skipped, (decoder.last_skipped or b"").decode("utf-8", "replace")))
        decoder.skipped = 0
    return events, finished


def _map_line(line: Any, chat: bool, out: list[Event], calls: _Calls) -> bool:
    """Append the events of one Ollama line to ``out``; True if it ends the stream."""
    if not isinstance(line, dict):
        out.append(Skipped(1, json.dumps(line)[:200]))
        return False
    error = line.get("error")
    if error is not None:
        out.append(StreamError("upstream_error", error if isinstance(error, str) else json.dumps(error)))
        return True
    message: dict[str, Any] = _NO_MESSAGE
    if chat:
        raw_message = line.get("message")
        message = raw_message if isinstance(raw_message, dict) else _NO_MESSAGE
        text, thinking = message.get("content"), message.get("thinking")
    else:
        text, thinking = line.get("response"), line.get("thinking")
    if isinstance(thinking, str) and thinking:
        out.append(Thinking(thinking))
    if isinstance(text, str) and text:
        out.append(Token(text))
    if chat and "tool_calls" in message:
        calls.read(message["tool_calls"], out)
    if line.get("done") is not True:
        return False
    eval_ns = line.get("eval_duration")
    finish_reason = _str_or_none(line.get("done_reason"))
    if calls.count and finish_reason in (None, "stop"):
        # Ollama says "stop"; a client (and OpenAI's protocol) needs to know it must run tools.
        finish_reason = "tool_calls"
    out.append(
        Done(
            finish_reason=finish_reason,
            usage=Usage(token_count(line.get("prompt_eval_count")), token_count(line.get("eval_count"))),
            generation_s=eval_ns * _NS if isinstance(eval_ns, int) and eval_ns > 0 else None,
        )
    )
    return True


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None
