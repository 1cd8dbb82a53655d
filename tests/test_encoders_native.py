"""llm-sse's own frames through the Encoder seam: the bytes the API promises, numbered in order."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sse import frames
from sse.encoders.base import Encoder, StreamMeta, StreamSummary
from sse.encoders.native import NativeEncoder
from sse.errors import ApiError
from sse.events import Done, Usage
from sse.eventstream import EventStreamDecoder


@dataclass(frozen=True)
class Call:
    """A tool call as ``sse.events.ToolCall`` carries it."""

    id: str = "call_0"
    name: str = "get_weather"
    arguments: str = '{"city":"Paris"}'


def decode(data: bytes) -> list[tuple[str, object, str]]:
    decoder = EventStreamDecoder()
    events = [*decoder.feed(data), *decoder.close()]
    return [(event.type, json.loads(event.data), event.last_event_id) for event in events]


def test_a_whole_stream_is_numbered_from_one_in_order():
    encoder: Encoder = NativeEncoder()
    summary = StreamSummary(
        prompt_tokens=3, completion_tokens=2, ttft_ms=1.5, total_ms=9.0, tokens_per_s=40.0, skipped_lines=0
    )
    data = b"".join(
        [
            encoder.start(StreamMeta("s1", "m", "ollama", {"flags": ["override"]})),
            encoder.thinking("hm"),
            encoder.token("Hi"),
            encoder.tool_call(Call()),
            encoder.heartbeat(),
            encoder.done(Done("tool_calls", Usage(3, None)), summary),
        ]
    )
    assert decode(data) == [
        ("meta", {"id": "s1", "model": "m", "provider": "ollama", "flags": ["override"]}, "1"),
        ("thinking", {"text": "hm"}, "2"),
        ("token", {"text": "Hi"}, "3"),
        ("tool_call", {"id": "call_0", "name": "get_weather", "arguments": '{"city":"Paris"}'}, "4"),
        (
            "done",
            {
                "finish_reason": "tool_calls",
                "usage": {"prompt_tokens": 3, "completion_tokens": 2},
                "timing": {"ttft_ms": 1.5, "total_ms": 9.0, "tokens_per_s": 40.0},
                "skipped_lines": 0,
            },
            "5",
        ),
    ]


def test_a_token_frame_is_the_hot_paths_text_frame():
    encoder = NativeEncoder()
    encoder.start(StreamMeta("s", None, None))
    assert encoder.token("a\u2028b") == frames.encode("token", {"text": "a\u2028b"}, id=2)


def test_the_tool_calls_arguments_stay_the_models_text():
    arguments = '{"b": 1,  "a": [2]}'  # spacing and key order as the model wrote them
    (_, data, _), *_ = decode(NativeEncoder().tool_call(Call(arguments=arguments)))
    assert data == {"id": "call_0", "name": "get_weather", "arguments": arguments}


def test_an_error_is_a_frame_after_the_start_and_json_before_it():
    encoder = NativeEncoder()
    error = ApiError("slow down", status=429, code="rate_limited", retry_after=2)
    assert encoder.error_response(error) == (429, json.dumps(error.body()).encode())
    assert decode(encoder.error(error)) == [("error", {"code": "rate_limited", "message": "slow down"}, "1")]
