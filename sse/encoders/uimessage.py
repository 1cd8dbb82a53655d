"""The Vercel AI SDK's UI message stream (AI SDK 5 and later): what ``useChat`` reads.

An event stream of ``data: {json}`` events, announced by the header
``x-vercel-ai-ui-message-stream: v1``:

``start`` (with ``messageId`` when the answer continues an assistant message
the client sent, e.g. after a tool result) and ``start-step``; then parts,
each opened, filled and closed: ``text-start`` / ``text-delta`` /
``text-end``, ``reasoning-start`` / ``reasoning-delta`` / ``reasoning-end``;
a tool call is ``tool-input-start``, one ``tool-input-delta`` with all of its
arguments, and ``tool-input-available`` with the arguments parsed (or
``tool-input-error`` when they are not a JSON object); the end is
``finish-step``, ``finish`` with its ``finishReason``, and ``data: [DONE]``.
An error after the status line is an ``error`` event (``errorText``), then
``[DONE]`` -- what the SDK's own server helpers write.

The part ids are ``text-1``, ``reasoning-2``, ...: unique within the message.
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
HEADERS: Mapping[str, str] = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
    "x-vercel-ai-ui-message-stream": "v1",
}
PING = frames.comment("ping")
DONE_EVENT = b"data: [DONE]\n\n"

# Chat Completions' finish reasons in the AI SDK's words.
_FINISH_REASONS = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool-calls",
    "content_filter": "content-filter",
}

_quote = json.encoder.encode_basestring


def _event(data: dict[str, Any]) -> str:
    return f"data: {frames.dumps(data)}\n\n"


def _safe(quoted: str) -> str:
    if "\u0085" in quoted or "\u2028" in quoted or "\u2029" in quoted:
        quoted = quoted.replace("\u0085", "\\u0085").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return quoted


def error_body(error: ApiError) -> tuple[int, bytes]:
    """Before the stream: llm-sse's JSON error (``useChat`` shows the body as ``error.message``)."""
    return error.status, json.dumps(error.body()).encode()


class UIMessageEncoder:
    """One answer as the UI message stream of one assistant message."""

    content_type = CONTENT_TYPE
    headers = HEADERS

    __slots__ = ("_delta_head", "_open", "_open_id", "_parts", "message_id")

    def __init__(self, *, message_id: str | None = None) -> None:
        self.message_id = message_id
        self._open = ""  # "text", "reasoning" or "" (no part open)
        self._open_id = ""
        self._parts = 0
        self._delta_head = ""

    def _switch(self, kind: str) -> str:
        """Close the open part and open one of ``kind``; the events that does."""
        out = self._close()
        self._parts += 1
        self._open, self._open_id = kind, f"{kind}-{self._parts}"
        self._delta_head = f'data: {{"type":"{kind}-delta","id":"{self._open_id}","delta":'
        return out + _event({"type": f"{kind}-start", "id": self._open_id})

    def _close(self) -> str:
        if not self._open:
            return ""
        out = _event({"type": f"{self._open}-end", "id": self._open_id})
        self._open = ""
        return out

    def start(self, meta: StreamMeta) -> bytes:
        first: dict[str, Any] = {"type": "start"}
        if self.message_id is not None:
            first["messageId"] = self.message_id
        return (_event(first) + _event({"type": "start-step"})).encode()

    def token(self, text: str) -> bytes:
        head = "" if self._open == "text" else self._switch("text")
        return f"{head}{self._delta_head}{_safe(_quote(text))}}}\n\n".encode()

    def thinking(self, text: str) -> bytes:
        head = "" if self._open == "reasoning" else self._switch("reasoning")
        return f"{head}{self._delta_head}{_safe(_quote(text))}}}\n\n".encode()

    def tool_call(self, call: ToolCallData) -> bytes:
        out = self._close()
        ids = {"toolCallId": call.id, "toolName": call.name}
        out += _event({"type": "tool-input-start", **ids})
        out += _event({"type": "tool-input-delta", "toolCallId": call.id, "inputTextDelta": call.arguments})
        try:
            arguments: Any = json.loads(call.arguments)
        except ValueError:
            arguments = None
        if isinstance(arguments, dict):
            out += _event({"type": "tool-input-available", **ids, "input": arguments})
        else:
            out += _event(
                {
                    "type": "tool-input-error",
                    **ids,
                    "input": call.arguments,
                    "errorText": "the model's arguments for this tool are not a JSON object",
                }
            )
        return out.encode()

    def done(self, done: Done, summary: StreamSummary) -> bytes:
        reason = _FINISH_REASONS.get(done.finish_reason or "stop", "stop")
        finish = {"type": "finish", "finishReason": reason}
        return (self._close() + _event({"type": "finish-step"}) + _event(finish)).encode() + DONE_EVENT

    def error(self, error: ApiError) -> bytes:
        return (self._close() + _event({"type": "error", "errorText": error.message})).encode() + DONE_EVENT

    def heartbeat(self) -> bytes:
        return PING

    def error_response(self, error: ApiError) -> tuple[int, bytes]:
        return error_body(error)
