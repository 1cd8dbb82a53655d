"""The UI message stream encoder: parts opened, filled and closed in the order useChat expects."""

from __future__ import annotations

import json
from typing import Any

from sse.encoders.base import StreamMeta, StreamSummary
from sse.encoders.uimessage import UIMessageEncoder
from sse.errors import InvalidRequest, UpstreamError
from sse.events import Done, ToolCall
from sse.eventstream import EventStreamDecoder

META = StreamMeta("abc", "m", "ollama")
SUMMARY = StreamSummary(
    prompt_tokens=5, completion_tokens=3, ttft_ms=1.0, total_ms=2.0, tokens_per_s=9.0, skipped_lines=0
)


def parts(data: bytes) -> list[Any]:
    decoder = EventStreamDecoder()
    return [e.data if e.data == "[DONE]" else json.loads(e.data) for e in [*decoder.feed(data), *decoder.close()]]


def test_header_announces_the_protocol() -> None:
    assert UIMessageEncoder().headers["x-vercel-ai-ui-message-stream"] == "v1"
    assert UIMessageEncoder().content_type.startswith("text/event-stream")


def test_reasoning_then_text_then_finish() -> None:
    encoder = UIMessageEncoder()
    body = b"".join(
        [
            encoder.start(META),
            encoder.thinking("Hm"),
            encoder.thinking("m."),
            encoder.token("Hel"),
            encoder.token("lo"),
            encoder.done(Done("stop"), SUMMARY),
        ]
    )
    assert parts(body) == [
        {"type": "start"},
        {"type": "start-step"},
        {"type": "reasoning-start", "id": "reasoning-1"},
        {"type": "reasoning-delta", "id": "reasoning-1", "delta": "Hm"},
        {"type": "reasoning-delta", "id": "reasoning-1", "delta": "m."},
        {"type": "reasoning-end", "id": "reasoning-1"},
        {"type": "text-start", "id": "text-2"},
        {"type": "text-delta", "id": "text-2", "delta": "Hel"},
        {"type": "text-delta", "id": "text-2", "delta": "lo"},
        {"type": "text-end", "id": "text-2"},
        {"type": "finish-step"},
        {"type": "finish", "finishReason": "stop"},
        "[DONE]",
    ]


def test_a_continued_message_keeps_its_id() -> None:
    assert parts(UIMessageEncoder(message_id="msg-1").start(META))[0] == {"type": "start", "messageId": "msg-1"}


def test_a_tool_call_closes_the_text_and_is_available_parsed() -> None:
    encoder = UIMessageEncoder()
    encoder.start(META)
    body = encoder.token("Let me look.") + encoder.tool_call(ToolCall("call_1", "get_weather", '{"city":"Paris"}'))
    body += encoder.done(Done("tool_calls"), SUMMARY)
    assert parts(body) == [
        {"type": "text-start", "id": "text-1"},
        {"type": "text-delta", "id": "text-1", "delta": "Let me look."},
        {"type": "text-end", "id": "text-1"},
        {"type": "tool-input-start", "toolCallId": "call_1", "toolName": "get_weather"},
        {"type": "tool-input-delta", "toolCallId": "call_1", "inputTextDelta": '{"city":"Paris"}'},
        {"type": "tool-input-available", "toolCallId": "call_1", "toolName": "get_weather", "input": {"city": "Paris"}},
        {"type": "finish-step"},
        {"type": "finish", "finishReason": "tool-calls"},
        "[DONE]",
    ]


def test_arguments_that_are_not_an_object_are_a_tool_input_error() -> None:
    encoder = UIMessageEncoder()
    encoder.start(META)
    last = parts(encoder.tool_call(ToolCall("c", "f", '{"city": "Par')))[-1]
    assert last["type"] == "tool-input-error"
    assert last["input"] == '{"city": "Par'
    assert last["errorText"]


def test_an_error_closes_the_open_part_then_ends() -> None:
    encoder = UIMessageEncoder()
    encoder.start(META)
    body = encoder.token("Once") + encoder.error(UpstreamError("the model server dropped"))
    assert parts(body)[-3:] == [
        {"type": "text-end", "id": "text-1"},
        {"type": "error", "errorText": "the model server dropped"},
        "[DONE]",
    ]


def test_text_with_line_breakers_stays_on_one_data_line() -> None:
    encoder = UIMessageEncoder()
    encoder.start(META)
    raw = encoder.token("a\u2028b\nc")
    assert b"\xe2\x80\xa8" not in raw
    assert parts(raw)[-1]["delta"] == "a\u2028b\nc"


def test_errors_before_the_stream_are_llm_sses_json() -> None:
    status, body = UIMessageEncoder().error_response(InvalidRequest("bad", field="messages"))
    assert status == 400
    assert json.loads(body) == {"error": {"code": "invalid_request", "message": "bad", "field": "messages"}}
