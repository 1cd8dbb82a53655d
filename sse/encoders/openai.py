"""OpenAI's Chat Completions protocol: what the ``openai`` SDKs and "OpenAI base URL" tools read.

Streaming (``OpenAIStreamEncoder``): ``text/event-stream``, each event one
``data: {chat.completion.chunk}`` line and a blank line, no event names.  The
first chunk's delta carries ``role: "assistant"``; then one chunk per event:
``delta.content`` for text, ``delta.reasoning_content`` for reasoning (the
field vLLM, DeepSeek, llama.cpp's server and LiteLLM emit and the common
clients read), ``delta.tool_calls`` for a tool call -- whole, in one fragment
with its ``index``, ``id``, ``function.name`` and all of ``function.arguments``,
which every client that assembles fragments also accepts.  The last choice
chunk has an empty delta and ``finish_reason``; with
``stream_options.include_usage`` a chunk with ``choices: []`` and ``usage``
follows; then ``data: [DONE]``.  An error after the status line is one
``data: {"error": {...}}`` event and no ``[DONE]`` (what OpenAI and OpenRouter
send, and what the SDKs raise on).

Not streaming (``OpenAICompletionEncoder``): the same events are gathered and
``done`` returns one ``chat.completion`` object; until then nothing is
written, so every error is an HTTP status with OpenAI's error body.

Errors before the stream: ``{"error": {"message", "type", "param", "code"}}``
with the status, which the SDKs turn into their typed errors (401
``AuthenticationError``, 429 ``RateLimitError``, ...).  ``code`` is llm-sse's
own error code, ``param`` the field at fault.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .. import frames
from ..errors import ApiError
from ..events import Done
from .base import StreamMeta, StreamSummary, ToolCallData

CONTENT_TYPE = "text/event-stream; charset=utf-8"
HEADERS: Mapping[str, str] = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
PING = frames.comment("ping")
DONE_EVENT = b"data: [DONE]\n\n"

# OpenAI's finish reasons; anything else an upstream says (Ollama's "load",
# "unload") is an ordinary end.
FINISH_REASONS = ("stop", "length", "tool_calls", "content_filter")

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    409: "conflict_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}

_quote = json.encoder.encode_basestring  # the C string encoder, as frames.text_frame uses


def completion_id(stream_id: str) -> str:
    """The ``id`` of every chunk of a stream: OpenAI's prefix and the stream's own id."""
    return f"chatcmpl-{stream_id}"


def finish_reason(done: Done) -> str:
    reason = done.finish_reason
    return reason if reason in FINISH_REASONS else "stop"


def error_type(status: int) -> str:
    """OpenAI's ``type`` for a status (the SDKs pick their error class by status)."""
    if status >= 500:
        return "server_error"
    return _ERROR_TYPES.get(status, "invalid_request_error")


def error_object(error: ApiError) -> dict[str, Any]:
    """``{"error": {"message", "type", "param", "code"}}``, as OpenAI answers."""
    return {
        "error": {
            "message": error.message,
            "type": error_type(error.status),
            "param": error.field,
            "code": error.code,
        }
    }


def error_response(error: ApiError) -> tuple[int, bytes]:
    return error.status, json.dumps(error_object(error)).encode()


def usage_of(done: Done, summary: StreamSummary) -> dict[str, int]:
    """Chat Completions' usage object (prompt tokens 0 when the upstream did not say)."""
    prompt = summary.prompt_tokens or 0
    completion = summary.completion_tokens
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _line(text: str) -> str:
    """JSON text made safe for one ``data:`` line (see ``frames.dumps``)."""
    if "\u0085" in text or "\u2028" in text or "\u2029" in text:
        text = text.replace("\u0085", "\\u0085").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return text


class OpenAIStreamEncoder:
    """One streamed answer as ``chat.completion.chunk`` events.

    Every chunk starts with the same ``id``, ``object``, ``created`` and
    ``model``: that prefix is made once in ``start``, and a token costs one
    string quote and one concatenation.
    """

    content_type = CONTENT_TYPE
    headers = HEADERS

    __slots__ = ("_calls", "_prefix", "_suffix", "created", "include_usage", "model")

    def __init__(self, *, model: str, created: int, include_usage: bool = False) -> None:
        self.model = model  # the name the client asked for, echoed back as OpenAI does
        self.created = created
        self.include_usage = include_usage
        self._prefix = ""
        self._suffix = ',"logprobs":null,"finish_reason":null}]}\n\n'
        self._calls = 0

    def _chunk(self, delta: str) -> bytes:
        return f"{self._prefix}{delta}{self._suffix}".encode()

    def start(self, meta: StreamMeta) -> bytes:
        head = {
            "id": completion_id(meta.id),
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
        }
        # '{"id":...,"model":"m"' + ',"choices":[{"index":0,"delta":'
        self._prefix = "data: " + frames.dumps(head)[:-1] + ',"choices":[{"index":0,"delta":'
        return self._chunk('{"role":"assistant","content":""}')

    def token(self, text: str) -> bytes:
        return self._chunk('{"content":' + _line(_quote(text)) + "}")

    def thinking(self, text: str) -> bytes:
        return self._chunk('{"reasoning_content":' + _line(_quote(text)) + "}")

    def tool_call(self, call: ToolCallData) -> bytes:
        fragment = {
            "index": self._calls,
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": call.arguments},
        }
        self._calls += 1
        return self._chunk(frames.dumps({"tool_calls": [fragment]}))

    def done(self, done: Done, summary: StreamSummary) -> bytes:
        reason = finish_reason(done)
        last = f'{self._prefix}{{}},"logprobs":null,"finish_reason":"{reason}"}}]}}\n\n'
        if self.include_usage:
            head = self._prefix[: self._prefix.index(',"choices":')]
            last += f'{head},"choices":[],"usage":{frames.dumps(usage_of(done, summary))}}}\n\n'
        return last.encode() + DONE_EVENT

    def error(self, error: ApiError) -> bytes:
        return f"data: {frames.dumps(error_object(error))}\n\n".encode()

    def heartbeat(self) -> bytes:
        return PING

    def error_response(self, error: ApiError) -> tuple[int, bytes]:
        return error_response(error)


class OpenAICompletionEncoder:
    """One answer gathered into a single ``chat.completion`` (``stream: false``).

    Every event method returns nothing to write; ``done`` returns the whole
    JSON body.  Text and reasoning are kept as lists of pieces and joined
    once.  ``heartbeat`` is empty: a JSON body has no room for keep-alives, so
    nothing is committed until the answer is complete and any failure is
    still an HTTP status.
    """

    content_type = "application/json"
    headers: Mapping[str, str] = {"Cache-Control": "no-cache"}

    __slots__ = ("_calls", "_id", "_reasoning", "_text", "created", "model")

    def __init__(self, *, model: str, created: int) -> None:
        self.model = model
        self.created = created
        self._id = ""
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._calls: list[dict[str, Any]] = []

    def start(self, meta: StreamMeta) -> bytes:
        self._id = completion_id(meta.id)
        return b""

    def token(self, text: str) -> bytes:
        self._text.append(text)
        return b""

    def thinking(self, text: str) -> bytes:
        self._reasoning.append(text)
        return b""

    def tool_call(self, call: ToolCallData) -> bytes:
        self._calls.append(
            {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
        )
        return b""

    def completion(self, done: Done, summary: StreamSummary) -> dict[str, Any]:
        """The ``chat.completion`` object."""
        text = "".join(self._text)
        message: dict[str, Any] = {"role": "assistant", "content": text if text or not self._calls else None}
        if self._reasoning:
            message["reasoning_content"] = "".join(self._reasoning)
        if self._calls:
            message["tool_calls"] = self._calls
        message["refusal"] = None
        return {
            "id": self._id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason(done)}],
            "usage": usage_of(done, summary),
        }

    def done(self, done: Done, summary: StreamSummary) -> bytes:
        return json.dumps(self.completion(done, summary), ensure_ascii=False).encode()

    def error(self, error: ApiError) -> bytes:
        return json.dumps(error_object(error)).encode()

    def heartbeat(self) -> bytes:
        return b""

    def error_response(self, error: ApiError) -> tuple[int, bytes]:
        return error_response(error)
