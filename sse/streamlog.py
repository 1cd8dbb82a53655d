"""One structured record per stream, written as one log line when it ends.

The record is filled in as the stream goes (model, provider, first token,
counts) and finished exactly once, whatever the ending -- done, error,
cancelled -- so a stream the client abandoned is logged and counted like any
other.  Prompts are not part of it unless asked for; keys never are.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("llm_sse.stream")


@dataclass(frozen=True, slots=True)
class Attempt:
    """A provider that was tried and failed before the stream was served."""

    provider: str
    code: str
    message: str
    # For the operator: what the client was not told (the model server's address, the full cause).
    detail: str = ""

    def __str__(self) -> str:
        text = f"{self.provider}: {self.code}: {self.message}"
        return f"{text} ({self.detail})" if self.detail else text


@dataclass(slots=True)
class StreamRecord:
    id: str
    client: str
    started: float = field(default_factory=time.monotonic)
    model: str | None = None
    provider: str | None = None
    outcome: str = "open"
    message: str | None = None
    first_token_at: float | None = None
    tokens: int = 0
    thinking_tokens: int = 0
    tool_calls: int = 0
    skipped_lines: int = 0
    heartbeats: int = 0
    attempts: list[Attempt] = field(default_factory=list)
    served: bool = False  # a provider produced a first event
    cooling: list[str] = field(default_factory=list)  # providers skipped: they failed recently
    input_chars: int = 0
    prompt: str | None = None
    ended: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ttft_ms(self) -> float | None:
        if self.first_token_at is None:
            return None
        return round((self.first_token_at - self.started) * 1000, 1)

    @property
    def duration_ms(self) -> float:
        end = self.ended if self.ended is not None else time.monotonic()
        return round((end - self.started) * 1000, 1)

    def fields(self) -> dict[str, Any]:
        """The log line's fields, in a stable order."""
        out: dict[str, Any] = {
            "stream": self.id,
            "client": self.client,
            "model": self.model,
            "provider": self.provider,
            "outcome": self.outcome,
            "ttft_ms": self.ttft_ms,
            "tokens": self.tokens,
            "duration_ms": self.duration_ms,
            "skipped_lines": self.skipped_lines,
        }
        if self.thinking_tokens:
            out["thinking_tokens"] = self.thinking_tokens
        if self.tool_calls:
            out["tool_calls"] = self.tool_calls
        if self.message:
            out["error"] = self.message
        if self.attempts:
            out["attempts"] = [str(attempt) for attempt in self.attempts]
        if self.cooling:
            out["cooling_down"] = self.cooling
        out["input_chars"] = self.input_chars
        out.update(self.extra)
        if self.prompt is not None:
            out["prompt"] = self.prompt
        return out


StreamObserver = Callable[[StreamRecord], None]


def finish(record: StreamRecord, outcome: str, observers: list[StreamObserver], message: str | None = None) -> None:
    """Close the record, write its log line, and tell the observers (metrics)."""
    if record.ended is not None:
        return
    record.ended = time.monotonic()
    record.outcome = outcome
    if message is not None:
        record.message = message
    level = logging.INFO if outcome in ("done", "cancelled") else logging.WARNING
    log.log(level, "stream", extra={"fields": record.fields()})
    for observer in observers:
        try:
            observer(record)
        except Exception:  # an observer must never break a stream's ending
            log.exception("stream observer failed")
