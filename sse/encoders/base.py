"""The Encoder seam: one stream's typed events in, one wire protocol's bytes out.

A stream's life -- providers in order, fallback before the first token, the
first-token and idle timeouts, heartbeats, the send timeout, Stop, exactly one
terminal event, the record and the metrics -- is the same whatever the client
speaks, and lives once in ``sse.stream``.  An endpoint only picks the encoder:
llm-sse's own frames (``native``), OpenAI's ``chat.completion.chunk`` stream,
the Vercel AI SDK's UI message stream.

An encoder is made per stream (it may count frames, remember ids) and is
called in order: ``start`` once when the stream's status is committed, then
``token``/``thinking``/``tool_call`` as events arrive, then exactly one of
``done`` or ``error``; ``heartbeat`` any time in between.  Before the status
is committed an error is not a frame but an HTTP answer: ``error_response``.

Every method returns the bytes to write, already complete (the writer adds
nothing), and does no I/O: the token path pays one method call per event.

``tool_call`` takes anything with ``id``, ``name`` and ``arguments``
(``ToolCallData``): ``sse.events.ToolCall`` is such a value.  The protocol
names the shape rather than the class so the seam does not wait for the event
type; an encoder may annotate its parameter with ``ToolCallData``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import ApiError
from ..events import Done


@dataclass(frozen=True, slots=True)
class StreamMeta:
    """What a stream is, known once its provider produced a first event.

    ``extra`` holds the fields other parts of the service add to llm-sse's
    ``meta`` frame (the injection detector's ``flags``, a resumable stream's
    ``resume``); other protocols may ignore them.
    """

    id: str
    model: str | None
    provider: str | None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StreamSummary:
    """What the stream did, measured by the relay, for the terminal event.

    ``completion_tokens`` is the upstream's count when it gives one, else the
    tokens relayed; ``tokens_per_s`` prefers the upstream's own decode time.
    """

    prompt_tokens: int | None
    completion_tokens: int
    ttft_ms: float | None
    total_ms: float
    tokens_per_s: float | None
    skipped_lines: int


class ToolCallData(Protocol):
    """A complete tool call as encoders read it (``sse.events.ToolCall`` is one)."""

    @property
    def id(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def arguments(self) -> str:
        """The arguments as the model produced them: a JSON object's text."""


class Encoder(Protocol):
    """Turns one stream's typed events into the bytes of one wire protocol."""

    @property
    def content_type(self) -> str:
        """The stream's ``Content-Type``, e.g. ``text/event-stream; charset=utf-8`` (a class attribute will do)."""

    @property
    def headers(self) -> Mapping[str, str]:
        """Extra response headers (e.g. ``x-vercel-ai-ui-message-stream: v1``; a class attribute will do)."""

    def start(self, meta: StreamMeta) -> bytes:
        """The first bytes, once the status is committed (may be empty)."""

    def token(self, text: str) -> bytes: ...

    def thinking(self, text: str) -> bytes: ...

    def tool_call(self, call: ToolCallData) -> bytes: ...

    def done(self, done: Done, summary: StreamSummary) -> bytes:
        """The one successful terminal event."""

    def error(self, error: ApiError) -> bytes:
        """The one in-band terminal error, after the status was committed."""

    def heartbeat(self) -> bytes:
        """A keep-alive that readers ignore (an SSE comment)."""

    def error_response(self, error: ApiError) -> tuple[int, bytes]:
        """Before the stream: the status and the JSON body in the protocol's shape.

        The error's own headers (``Retry-After``) are added by the caller.
        """
