"""The OpenAI encoders: chat.completion.chunk events and the one chat.completion, byte-exact where it matters."""

from __future__ import annotations

import json
from typing import Any

from sse.encoders.base import StreamMeta, StreamSummary
from sse.encoders.openai import OpenAICompletionEncoder, OpenAIStreamEncoder, error_response
from sse.errors import ApiError, InvalidRequest, UpstreamError
from sse.events import Done, ToolCall, Usage
from sse.eventstream import EventStreamDecoder

META = StreamMeta("abc", "llama3.2:latest", "ollama")
SUMMARY = StreamSummary(
    prompt_tokens=5, completion_tokens=3, ttft_ms=1.0, total_ms=2.0, tokens_per_s=9.0, skipped_lines=0
)


def events(data: bytes) -> list[str]:
    decoder = EventStreamDecoder()
    return [e.data for e in [*decoder.feed(data), *decoder.close()]]


def chunks(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(d) for d in events(data) if d != "[DONE]"]


def test_a_streamed_answer_in_openais_shape() -> None:
    encoder = OpenAIStreamEncoder(model="my-model", created=1700000000)
    body = encoder.start(META) + encoder.token("Hel") + encoder.token("lo") + encoder.done(Done("stop"), SUMMARY)
    assert events(body)[-1] == "[DONE]"
    parsed = chunks(body)
    for chunk in parsed:
        assert chunk["id"] == "chatcmpl-abc"
        assert chunk["object"] == "chat.completion.chunk"
        assert chunk["created"] == 1700000000
        assert chunk["model"] == "my-model"
    assert [c["choices"][0]["delta"] for c in parsed] == [
        {"role": "assistant", "content": ""},
        {"content": "Hel"},
        {"content": "lo"},
        {},
    ]
    assert [c["choices"][0]["finish_reason"] for c in parsed] == [None, None, None, "stop"]
    assert "usage" not in parsed[-1]


def test_usage_chunk_when_asked() -> None:
    encoder = OpenAIStreamEncoder(model="m", created=1, include_usage=True)
    body = encoder.start(META) + encoder.done(Done("length", Usage(5, 3)), SUMMARY)
    *_, finish, usage = chunks(body)
    assert finish["choices"][0]["finish_reason"] == "length"
    assert usage["choices"] == []
    assert usage["usage"] == {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
    assert body.endswith(b"data: [DONE]\n\n")


def test_text_is_escaped_for_one_data_line() -> None:
    encoder = OpenAIStreamEncoder(model="m", created=1)
    encoder.start(META)
    text = 'a\nb\r"c"\u2028d\u0085é'
    raw = encoder.token(text)
    assert raw.count(b"\n") == 2
    assert b"\r" not in raw
    assert b"\xe2\x80\xa8" not in raw
    assert chunks(raw)[0]["choices"][0]["delta"]["content"] == text


def test_reasoning_is_reasoning_content() -> None:
    encoder = OpenAIStreamEncoder(model="m", created=1)
    encoder.start(META)
    assert chunks(encoder.thinking("hmm"))[0]["choices"][0]["delta"] == {"reasoning_content": "hmm"}


def test_tool_calls_are_whole_fragments_numbered_from_zero() -> None:
    encoder = OpenAIStreamEncoder(model="m", created=1)
    encoder.start(META)
    first = encoder.tool_call(ToolCall("call_x", "get_weather", '{"city":"Paris"}', 3))
    second = encoder.tool_call(ToolCall("call_y", "now", "{}", 7))
    assert chunks(first)[0]["choices"][0]["delta"] == {
        "tool_calls": [
            {
                "index": 0,
                "id": "call_x",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
            }
        ]
    }
    assert chunks(second)[0]["choices"][0]["delta"]["tool_calls"][0]["index"] == 1
    last = chunks(encoder.done(Done("tool_calls"), SUMMARY))[-1]
    assert last["choices"][0]["finish_reason"] == "tool_calls"


def test_finish_reasons_outside_openais_list_are_stop() -> None:
    encoder = OpenAIStreamEncoder(model="m", created=1)
    encoder.start(META)
    assert chunks(encoder.done(Done("unload"), SUMMARY))[-1]["choices"][0]["finish_reason"] == "stop"
    encoder = OpenAIStreamEncoder(model="m", created=1)
    encoder.start(META)
    assert chunks(encoder.done(Done(None), SUMMARY))[-1]["choices"][0]["finish_reason"] == "stop"


def test_an_error_in_the_stream_is_an_error_object_and_no_done() -> None:
    encoder = OpenAIStreamEncoder(model="m", created=1)
    encoder.start(META)
    body = encoder.error(UpstreamError("the model server dropped", code="upstream_disconnected"))
    assert b"[DONE]" not in body
    assert chunks(body) == [
        {
            "error": {
                "message": "the model server dropped",
                "type": "server_error",
                "param": None,
                "code": "upstream_disconnected",
            }
        }
    ]


def test_errors_before_the_stream_in_openais_shape() -> None:
    status, body = error_response(InvalidRequest("bad temperature", field="temperature"))
    assert status == 400
    assert json.loads(body) == {
        "error": {
            "message": "bad temperature",
            "type": "invalid_request_error",
            "param": "temperature",
            "code": "invalid_request",
        }
    }
    for code, kind in [
        (401, "authentication_error"),
        (404, "not_found_error"),
        (429, "rate_limit_error"),
        (503, "server_error"),
    ]:
        assert json.loads(error_response(ApiError("x", status=code))[1])["error"]["type"] == kind


def test_a_gathered_completion() -> None:
    encoder = OpenAICompletionEncoder(model="my-model", created=5)
    assert encoder.start(META) == b""
    assert encoder.thinking("hm") == b""
    assert encoder.token("Hel") == b""
    assert encoder.token("lo") == b""
    body = json.loads(encoder.done(Done("stop"), SUMMARY))
    assert body == {
        "id": "chatcmpl-abc",
        "object": "chat.completion",
        "created": 5,
        "model": "my-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello", "reasoning_content": "hm", "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
    }


def test_a_gathered_tool_call_has_null_content() -> None:
    encoder = OpenAICompletionEncoder(model="m", created=5)
    encoder.start(META)
    encoder.tool_call(ToolCall("call_x", "f", "{}"))
    message = json.loads(encoder.done(Done("tool_calls"), SUMMARY))["choices"][0]["message"]
    assert message["content"] is None
    assert message["tool_calls"] == [{"id": "call_x", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
