"""OpenAI-compatible servers: OpenAI, OpenRouter, vLLM, llama.cpp's server, LM Studio.

Streams ``POST {base_url}/chat/completions`` with ``stream: true`` and reads
the answer with the core's WHATWG event-stream decoder.  Wire facts this
module relies on (OpenAI's and OpenRouter's streaming docs, and transcripts in
tests/fixtures/openai and tests/fixtures/openrouter):

* each event is ``data: {chunk}``; ``data: [DONE]`` ends the stream; comment
  lines (OpenRouter's ``: OPENROUTER PROCESSING`` keep-alives, several before
  the first chunk and some between chunks) carry nothing;
* text is in ``choices[0].delta.content`` (``null`` on tool-call chunks),
  reasoning in ``delta.reasoning`` (OpenRouter) or ``delta.reasoning_content``
  (vLLM, DeepSeek, llama.cpp);
* ``finish_reason`` comes on its own chunk; with ``include_usage`` the usage
  follows in a chunk with ``choices: []`` -- and OpenRouter sends the finish
  chunk twice, the second carrying ``usage``.  So the one ``Done`` is made at
  ``[DONE]``, from everything seen;
* a failure after the status line is a chunk with a top-level ``error``
  object (OpenRouter adds ``finish_reason: "error"``), and no ``[DONE]``;
  before it, a real HTTP status with ``{"error": {"message", ...}}``;
* some servers ignore ``stream_options`` (llama.cpp's Python server sends no
  usage); counts then come from the relay's own tally;
* a tool call streams as fragments in ``delta.tool_calls``: the first of an
  ``index`` carries ``id`` and ``function.name``, the rest pieces of
  ``function.arguments`` (OpenRouter repeats ``role`` and sends empty pieces).
  A call is handed out whole once the next index starts or the answer
  finishes; a forced ``tool_choice`` may finish with ``"stop"``, which is
  reported as ``"tool_calls"`` so a client knows to run them.

Failures before the first token are raised (so the relay can answer with a
status, or try the next provider); after it they are ``StreamError`` events.
The API key goes only into the ``Authorization`` header of upstream requests:
it is never logged, and any upstream message that echoes it is redacted.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp

from ..chat import ChatRequest, Message
from ..errors import (
    UpstreamDisconnected,
    UpstreamError,
    from_upstream_status,
)
from ..events import Done, Event, Skipped, StreamError, Thinking, Token, ToolCall, Usage, coalesce
from ..eventstream import EventStreamDecoder, EventTooLarge, ServerSentEvent
from ..routing import ModelMap
from .base import ModelInfo, Readiness, token_count
from .http import DEFAULT_LIMITS, HttpProvider, UpstreamLimits, error_message, open_stream, read_chunk, read_limited

log = logging.getLogger("llm_sse.providers.openai")


# Ollama's option names (our request format) -> OpenAI's.  ``top_k``, ``min_p``
# and ``repetition_penalty`` are extensions that OpenRouter, vLLM and llama.cpp
# accept and OpenAI itself rejects; they are sent only when a request asks.
_OPTION_NAMES = {
    "temperature": "temperature",
    "top_p": "top_p",
    "num_predict": "max_tokens",
    "seed": "seed",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
    "stop": "stop",
    "top_k": "top_k",
    "min_p": "min_p",
    "repeat_penalty": "repetition_penalty",
}


class OpenAIProvider(HttpProvider):
    """Streams from one OpenAI-compatible server over one shared ``aiohttp.ClientSession``.

    ``dialect`` is ``"openrouter"`` for OpenRouter (reasoning is asked for with
    its ``reasoning`` object) and ``"openai"`` for everything else
    (``reasoning_effort``).  A request that names no model, when none is
    configured, gets the first model the server lists: right for a local
    server that serves one model (the factories insist on a configured default
    for OpenRouter and its hundreds).
    """

    models_ttl = 300.0  # OpenRouter lists hundreds: refetch at most this often
    json_limit = 16 * 1024 * 1024

    def __init__(
        self,
        base_url: str,
        *,
        name: str = "openai",
        api_key: str = "",
        models: ModelMap | None = None,
        headers: Mapping[str, str] | None = None,
        dialect: str = "openai",
        limits: UpstreamLimits = DEFAULT_LIMITS,
    ) -> None:
        all_headers = dict(headers or {})
        if api_key:
            all_headers["Authorization"] = f"Bearer {api_key}"
        super().__init__(
            name,
            base_url,
            model_map=models or ModelMap(),
            limits=limits,
            headers=all_headers,
        )
        self.dialect = dialect
        self._api_key = api_key
        self._stream_headers = {**self._headers, "Accept": "text/event-stream"}

    def redact(self, text: str) -> str:
        """``text`` without the API key (upstream messages sometimes quote it)."""
        if self._api_key and self._api_key in text:
            text = text.replace(self._api_key, "[redacted]")
        return text

    def describe_error(self, status: int, body: bytes) -> str:
        return self.status_error(status, error_message(body), None).message

    # -- models and health

    def parse_models(self, data: Any) -> list[ModelInfo]:
        entries = data.get("data") if isinstance(data, dict) else None
        models = []
        for entry in entries if isinstance(entries, list) else []:
            if not (isinstance(entry, dict) and isinstance(entry.get("id"), str)):
                continue
            details = {key: entry[key] for key in ("context_length", "owned_by") if entry.get(key)}
            models.append(ModelInfo(entry["id"], self.name, details))
        return models

    async def readiness(self) -> Readiness:
        """Reachable and listing models.  A fresh cached list counts, so that
        frequent readiness probes do not refetch a large list."""
        try:
            models = await self.models()
        except UpstreamError as exc:
            return Readiness(False, exc.message)
        return Readiness(True, f"{self.name} at {self.base_url} lists {len(models)} models")

    # -- streaming

    def _payload(self, request: ChatRequest, model: str) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": model,
            "messages": [_message(m) for m in request.as_messages()],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.tools:
            payload["tools"] = [tool.as_openai() for tool in request.tools]
            if request.tool_choice is not None:
                payload["tool_choice"] = request.tool_choice
        for name, value in request.options.items():
            target = _OPTION_NAMES.get(name)
            if target is not None:  # num_ctx has no equivalent: the server's context is fixed
                payload[target] = value
        think = request.think
        if think is not None:
            if self.dialect == "openrouter":
                payload["reasoning"] = {"effort": think} if isinstance(think, str) else {"enabled": think}
            elif isinstance(think, str):
                payload["reasoning_effort"] = think
        return payload

    def status_error(self, status: int, message: str, retry_after: float | None) -> UpstreamError:
        """An upstream's HTTP error as our client sees it: the key is never in it."""
        message = self.redact(message)
        error = from_upstream_status(status, message, retry_after=retry_after)
        if error.code == "upstream_auth":
            log.warning(
                "upstream refused our credentials",
                extra={"provider": self.name, "status": status, "upstream_message": message[:300]},
            )
            error = UpstreamError(
                f"the model server ({self.name}) refused this service's credentials (HTTP {status}); "
                "the operator must check its API key",
                code="upstream_auth",
            )
        return error

    async def stream(self, request: ChatRequest, model: str) -> AsyncIterator[Event]:
        url = self.base_url + "/chat/completions"
        reader = _ChunkReader(self)
        decoder = EventStreamDecoder(self.limits.max_line_bytes)
        async with open_stream(
            self.session,
            url,
            self._payload(request, model),
            name=self.name,
            headers=self._stream_headers,
            on_error_status=self.status_error,
        ) as upstream:
            response = upstream.response
            if response.content_type == "application/json":
                raise await self._json_instead_of_stream(response)
            if response.content_type != "text/event-stream":
                error = UpstreamError(
                    f"{self.name} answered {response.content_type or 'a body without a type'}, not an event stream "
                    "(is its base URL the API's?)",
                    code="upstream_protocol",
                    fallback=True,  # the provider's fault, not the request's: the next one may serve
                )
                error.log_fields["upstream"] = self.base_url  # the operator's to know, not the client's
                raise error
            while True:
                chunk = await read_chunk(response, self.name)
                try:
                    sse_events = decoder.feed(chunk) if chunk else decoder.close()
                except EventTooLarge as exc:
                    raise UpstreamError(f"{self.name} sent an {exc}", code="upstream_protocol") from None
                events: list[Event] = []
                finished = False
                for sse_event in sse_events:
                    if reader.read(sse_event, events):
                        finished = True
                        upstream.complete = type(events[-1]) is Done
                        break
                for event in coalesce(events):
                    yield event
                if finished:
                    return
                if not chunk:
                    done = reader.end_of_body()
                    yield done
                    return

    async def _json_instead_of_stream(self, response: aiohttp.ClientResponse) -> UpstreamError:
        """A 200 with a JSON body: an error some servers send that way, or a server that cannot stream."""
        body = await read_limited(response)
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if isinstance(data, dict) and "error" in data:
            return self.status_error(_error_status(data["error"]) or 502, error_message(body), None)
        return UpstreamError(
            f"{self.name} answered with one JSON document instead of an event stream", code="upstream_protocol"
        )


def _message(message: Message) -> dict[str, Any]:
    """A message in Chat Completions' shape (results by ``tool_call_id``)."""
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        out["content"] = message.content or None
        out["tool_calls"] = [
            {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
            for call in message.tool_calls
        ]
    if message.role == "tool" and message.tool_call_id is not None:
        out["tool_call_id"] = message.tool_call_id
    return out


class _ToolCallParts:
    """Fragments of the tool calls in one answer, put together by ``index``."""

    __slots__ = ("calls", "emitted")

    def __init__(self) -> None:
        self.calls: dict[int, list[Any]] = {}  # index -> [id, name, [argument pieces]]
        self.emitted = 0

    def add(self, fragments: Any, out: list[Event]) -> None:
        for fragment in fragments if isinstance(fragments, list) else ():
            if not isinstance(fragment, dict):
                continue
            index = fragment.get("index")
            if not isinstance(index, int) or isinstance(index, bool):
                index = max(self.calls, default=0)
            function = fragment.get("function")
            function = function if isinstance(function, dict) else {}
            call = self.calls.get(index)
            if call is None:
                # A new index: the calls before it are complete.
                self.flush(out)
                call = self.calls[index] = [None, None, []]
            if isinstance(fragment.get("id"), str) and fragment["id"]:
                call[0] = fragment["id"]
            if isinstance(function.get("name"), str) and function["name"]:
                call[1] = function["name"]
            piece = function.get("arguments")
            if isinstance(piece, str) and piece:
                call[2].append(piece)

    def flush(self, out: list[Event]) -> None:
        """Hand out every call gathered so far, in index order."""
        for index in sorted(self.calls):
            call_id, name, pieces = self.calls.pop(index)
            if name is None:
                out.append(Skipped(1, f"a tool call without a name at index {index}"))
                continue
            self.emitted += 1
            out.append(ToolCall(call_id or f"call_{index}", name, "".join(pieces) or "{}", index))


class _ChunkReader:
    """Turns one stream's decoded events into our events; remembers what ``Done`` needs."""

    def __init__(self, provider: OpenAIProvider) -> None:
        self.provider = provider
        self.finish_reason: str | None = None
        self.usage = Usage()
        self.produced = False  # a Token, Thinking or ToolCall has been handed out
        self.tool_calls: _ToolCallParts | None = None

    def _done(self, out: list[Event]) -> Done:
        finish_reason = self.finish_reason
        tool_calls = self.tool_calls
        if tool_calls is not None:
            tool_calls.flush(out)
            if tool_calls.emitted and finish_reason in (None, "stop"):
                finish_reason = "tool_calls"
        return Done(finish_reason, self.usage)

    def read(self, sse_event: ServerSentEvent, out: list[Event]) -> bool:
        """Append the events of one upstream event to ``out``; True if the stream ends."""
        data = sse_event.data
        if data == "[DONE]":
            out.append(self._done(out))
            return True
        try:
            chunk = json.loads(data)
        except ValueError:
            out.append(Skipped(1, data[:200]))
            return False
        if not isinstance(chunk, dict):
            out.append(Skipped(1, data[:200]))
            return False
        choices = chunk.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
        if chunk.get("error") is not None or choice.get("finish_reason") == "error" or sse_event.type == "error":
            return self._error(chunk, out)
        delta = choice.get("delta")
        if isinstance(delta, dict):
            reasoning = delta.get("reasoning")
            if not isinstance(reasoning, str):
                reasoning = delta.get("reasoning_content")
            if isinstance(reasoning, str) and reasoning:
                out.append(Thinking(reasoning))
                self.produced = True
            content = delta.get("content")
            if isinstance(content, str) and content:
                out.append(Token(content))
                self.produced = True
            elif "tool_calls" in delta:  # tool-call chunks carry no text
                if self.tool_calls is None:
                    self.tool_calls = _ToolCallParts()
                self.tool_calls.add(delta["tool_calls"], out)
                self.produced = self.produced or self.tool_calls.emitted > 0
        finish_reason = choice.get("finish_reason")
        if isinstance(finish_reason, str):
            self.finish_reason = finish_reason
            if self.tool_calls is not None and self.tool_calls.calls:
                self.tool_calls.flush(out)
                self.produced = True
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.usage = Usage(token_count(usage.get("prompt_tokens")), token_count(usage.get("completion_tokens")))
        return False

    def _error(self, chunk: dict[str, Any], out: list[Event]) -> bool:
        """An in-band failure: an error frame once text was sent, else a raised error."""
        error = chunk.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            message = error["message"]
        elif isinstance(error, str):
            message = error
        else:
            message = f"{self.provider.name} reported an error mid-answer"
        message = self.provider.redact(message)
        if self.produced:
            out.append(StreamError("upstream_error", message))
            return True
        # No text has reached the client: this is a failure before the first
        # token, raised so that the client gets a status -- and the next
        # provider a try if it is a 429 or a server-side failure (an error
        # without a status is the server's: the request itself was accepted).
        status = _error_status(error)
        if status is not None:
            raise self.provider.status_error(status, message, None)
        raise UpstreamError(message, fallback=True)

    def end_of_body(self) -> Done:
        """The body ended without ``[DONE]``: finished if a finish reason came."""
        if self.finish_reason is None:
            raise UpstreamDisconnected(f"{self.provider.name} ended the stream without finishing")
        return self._done([])


def _error_status(error: Any) -> int | None:
    """The HTTP-like status in an error object (OpenRouter puts it in ``code``)."""
    code = error.get("code") if isinstance(error, dict) else None
    if isinstance(code, int) and not isinstance(code, bool) and 400 <= code <= 599:
        return code
    if isinstance(code, str) and code.isdigit() and 400 <= int(code) <= 599:
        return int(code)
    kind = error.get("type") if isinstance(error, dict) else None
    if "rate_limit" in f"{code} {kind}":
        return 429
    return None
