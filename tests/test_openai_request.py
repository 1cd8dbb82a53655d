"""OpenAI's Chat Completions request, validated into a ChatRequest: every field mapped or refused by name."""

from __future__ import annotations

from typing import Any

import pytest

from sse.chat import Message, RequestLimits, Tool
from sse.errors import ApiError
from sse.events import ToolCall
from sse.openai_request import OpenAIChatRequest, parse_openai_request

USER = [{"role": "user", "content": "hi"}]
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}


def parse(**fields: Any) -> OpenAIChatRequest:
    return parse_openai_request({"model": "m", "messages": USER, **fields})


def rejects(body: dict[str, Any], *, field: str, status: int = 400) -> ApiError:
    with pytest.raises(ApiError) as caught:
        parse_openai_request(body, RequestLimits())
    assert caught.value.status == status, caught.value.message
    assert caught.value.field == field, caught.value.message
    return caught.value


def test_the_smallest_request() -> None:
    request = parse()
    assert request.model == "m"
    assert request.stream is False
    assert request.include_usage is False
    assert request.chat.messages == (Message("user", "hi"),)
    assert request.chat.model == "m"
    assert request.chat.resumable is False


def test_streaming_with_usage() -> None:
    request = parse(stream=True, stream_options={"include_usage": True})
    assert request.stream
    assert request.include_usage


@pytest.mark.parametrize(
    ("fields", "options"),
    [
        ({"max_tokens": 12}, {"num_predict": 12}),
        ({"max_completion_tokens": 7}, {"num_predict": 7}),
        ({"temperature": 0.2, "top_p": 0.9}, {"temperature": 0.2, "top_p": 0.9}),
        ({"stop": "END"}, {"stop": ["END"]}),
        ({"stop": ["a", "b"], "seed": 3}, {"stop": ["a", "b"], "seed": 3}),
        ({"presence_penalty": -1, "frequency_penalty": 1.5}, {"presence_penalty": -1.0, "frequency_penalty": 1.5}),
    ],
)
def test_sampling_fields_map_to_the_providers_options(fields: dict[str, Any], options: dict[str, Any]) -> None:
    assert parse(**fields).chat.options == options


def test_both_token_limits_at_once_is_ambiguous() -> None:
    rejects({"model": "m", "messages": USER, "max_tokens": 1, "max_completion_tokens": 2}, field="max_tokens")


def test_out_of_range_values_name_openais_field() -> None:
    error = rejects({"model": "m", "messages": USER, "temperature": 3}, field="temperature")
    assert "between 0 and 2" in error.message


@pytest.mark.parametrize(
    ("effort", "think"), [("none", False), ("minimal", "low"), ("low", "low"), ("high", "high"), ("xhigh", "high")]
)
def test_reasoning_effort_is_think(effort: str, think: bool | str) -> None:
    assert parse(reasoning_effort=effort).chat.think == think


def test_unknown_fields_are_refused_by_name() -> None:
    error = rejects({"model": "m", "messages": USER, "frequency_penalti": 1}, field="frequency_penalti")
    assert "unknown" in error.message


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"stream": "yes"}, "stream"),
        ({"stream_options": {"include_usage": 1}}, "stream_options"),
        ({"reasoning_effort": "max"}, "reasoning_effort"),
        ({"logit_bias": {}}, "logit_bias"),
    ],
)
def test_what_llm_sse_does_not_do_is_a_400(fields: dict[str, Any], field: str) -> None:
    rejects({"model": "m", "messages": USER, **fields}, field=field)


def test_harmless_fields_are_accepted() -> None:
    parse(user="u-1", n=1, logprobs=False, store=False, metadata={"a": "b"}, parallel_tool_calls=True)


def test_model_and_messages_are_required() -> None:
    rejects({"messages": USER}, field="model")
    rejects({"model": "m"}, field="messages")


def test_the_model_allowlist_applies() -> None:
    with pytest.raises(ApiError) as caught:
        parse_openai_request({"model": "x", "messages": USER}, RequestLimits(models_allowed=("m",)))
    assert caught.value.code == "model_not_allowed"


def test_developer_is_system_and_text_parts_are_joined() -> None:
    request = parse(
        messages=[
            {"role": "developer", "content": "be brief"},
            {
                "role": "user",
                "content": [{"type": "text", "text": "hel"}, {"type": "text", "text": "lo"}],
                "name": "ann",
            },
        ]
    )
    assert request.chat.messages == (Message("system", "be brief"), Message("user", "hello"))


def test_an_image_part_is_refused_by_its_place() -> None:
    rejects(
        {
            "model": "m",
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "x"}, {"type": "image_url", "image_url": {}}]}
            ],
        },
        field="messages[0].content[1]",
    )


def test_a_tool_round_trip_history() -> None:
    request = parse(
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_a",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_a", "content": "22°C"},
        ],
        tools=[WEATHER],
        tool_choice="auto",
    )
    chat = request.chat
    assert chat.tools == (Tool("get_weather", None, {"type": "object"}),)
    assert chat.tool_choice == "auto"
    assert chat.messages is not None
    assert chat.messages[1] == Message("assistant", "", (ToolCall("call_a", "get_weather", '{"city":"Paris"}', 0),))
    assert chat.messages[2] == Message("tool", "22°C", tool_call_id="call_a", tool_name="get_weather")


def test_tool_choice_must_name_a_given_tool() -> None:
    rejects(
        {
            "model": "m",
            "messages": USER,
            "tools": [WEATHER],
            "tool_choice": {"type": "function", "function": {"name": "x"}},
        },
        field="tool_choice",
    )


def test_arguments_that_are_not_a_json_object_are_refused() -> None:
    rejects(
        {
            "model": "m",
            "messages": [
                {"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "[1]"}}]},
            ],
        },
        field="messages[0].tool_calls[0].function.arguments",
    )


def test_the_conversation_size_limit_applies() -> None:
    with pytest.raises(ApiError) as caught:
        parse_openai_request({"model": "m", "messages": USER * 3}, RequestLimits(max_input_chars=5))
    assert caught.value.status == 413


def test_an_answer_sent_back_as_it_came_is_accepted() -> None:
    """The SDKs' helpers return messages with refusal/parsed/annotations, and ours have reasoning_content."""
    echoed = {
        "role": "assistant",
        "content": "Hi",
        "refusal": None,
        "parsed": None,
        "annotations": [],
        "reasoning_content": "thought",
    }
    assert parse(messages=[*USER, echoed]).chat.messages == (Message("user", "hi"), Message("assistant", "Hi"))
