"""llm-sse's own frames: ``meta``, ``token``, ``thinking``, ``tool_call``, ``done``, ``error``.

Every frame but comments carries ``id: n`` (the n-th frame of the stream), so
a resumable stream can be read again after ``Last-Event-ID``.  The bytes are
the API's contract (docs and tests pin them): ``token``/``thinking`` go
through ``frames.text_frame``, the hot path's one formatting step.
"""

from __future__ import annotations

import json
from typing import Any

from .. import frames
from ..errors import ApiError
from ..events import Done
from .base import StreamMeta, StreamSummary, ToolCallData

CONTENT_TYPE = "text/event-stream; charset=utf-8"
# No caching anywhere, and no buffering in nginx (``X-Accel-Buffering``) even
# where the site forgot ``proxy_buffering off``.
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
PING = frames.comment("ping")


def meta_data(meta: StreamMeta) -> dict[str, Any]:
    """The ``meta`` frame's data: id, model, provider, then what others added."""
    data: dict[str, Any] = {"id": meta.id, "model": meta.model, "provider": meta.provider}
    data.update(meta.extra)
    return data


def done_data(done: Done, summary: StreamSummary) -> dict[str, Any]:
    return {
        "finish_reason": done.finish_reason,
        "usage": {"prompt_tokens": summary.prompt_tokens, "completion_tokens": summary.completion_tokens},
        "timing": {"ttft_ms": summary.ttft_ms, "total_ms": summary.total_ms, "tokens_per_s": summary.tokens_per_s},
        "skipped_lines": summary.skipped_lines,
    }


def error_body(error: ApiError) -> tuple[int, bytes]:
    """``{"error": {"code", "message", ...}}`` with its status, as ``web.json_response`` writes it."""
    return error.status, json.dumps(error.body()).encode()


class NativeEncoder:
    """One stream in llm-sse's frames; ``seq`` is the id of the last frame made."""

    content_type = CONTENT_TYPE
    headers = HEADERS

    __slots__ = ("seq",)

    def __init__(self) -> None:
        self.seq = 0

    def start(self, meta: StreamMeta) -> bytes:
        self.seq += 1
        return frames.encode("meta", meta_data(meta), id=self.seq)

    def token(self, text: str) -> bytes:
        self.seq += 1
        return frames.text_frame("token", text, self.seq)

    def thinking(self, text: str) -> bytes:
        self.seq += 1
        return frames.text_frame("thinking", text, self.seq)

    def tool_call(self, call: ToolCallData) -> bytes:
        self.seq += 1
        data = {"id": call.id, "name": call.name, "arguments": call.arguments}
        return frames.encode("tool_call", data, id=self.seq)

    def done(self, done: Done, summary: StreamSummary) -> bytes:
        self.seq += 1
        return frames.encode("done", done_data(done, summary), id=self.seq)

    def error(self, error: ApiError) -> bytes:
        self.seq += 1
        return frames.encode("error", error.frame_data(), id=self.seq)

    def heartbeat(self) -> bytes:
        return PING

    def error_response(self, error: ApiError) -> tuple[int, bytes]:
        return error_body(error)
