"""Request validation: every violation is a 400/413 that names the field."""

from __future__ import annotations

import pytest

from sse.chat import ChatRequest, Message, RequestLimits, parse_chat_request, parse_json_body
from sse.errors import ApiError

DEFAULT_LIMITS = RequestLimits()


def rejects(body, *, field: str, status: int = 400, limits: RequestLimits = DEFAULT_LIMITS) -> ApiError:
    with pytest.raises(ApiError) as caught:
        parse_chat_request(body, limits)
    assert caught.value.status == status
    assert caught.value.field == field, caught.value.message
    return caught.value


def test_a_prompt_request():
    request = parse_chat_request({"prompt": "hi", "model": "m", "options": {"temperature": 0.5}, "think": True})
    assert request == ChatRequest(prompt="hi", model="m", options={"temperature": 0.5}, think=True)
    assert request.as_messages() == (Message("user", "hi"),)


def test_a_messages_request():
    request = parse_chat_request(
        {"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]}
    )
    assert request.messages == (Message("system", "be brief"), Message("user", "hi"))
    assert request.input_chars == len("be brief") + 2


def test_max_tokens_is_an_alias_of_num_predict():
    assert parse_chat_request({"prompt": "x", "options": {"max_tokens": 12}}).options == {"num_predict": 12}


def test_think_levels():
    assert parse_chat_request({"prompt": "x", "think": "high"}).think == "high"
    rejects({"prompt": "x", "think": "max"}, field="think")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], "body"),
        ("prompt", "body"),
        ({}, "prompt"),
        ({"prompt": "a", "messages": [{"role": "user", "content": "b"}]}, "prompt"),
        ({"promt": "a"}, "promt"),
        ({"prompt": 3}, "prompt"),
        ({"prompt": "   "}, "prompt"),
        ({"messages": "hi"}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": ["hi"]}, "messages[0]"),
        ({"messages": [{"role": "user"}]}, "messages[0].content"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": "x", "name": "n"}]}, "messages[0].name"),
        ({"messages": [{"role": "user", "content": ""}]}, "messages"),
        ({"prompt": "x", "model": ""}, "model"),
        ({"prompt": "x", "model": 7}, "model"),
        ({"prompt": "x", "model": "a\nb"}, "model"),
        ({"prompt": "x", "options": []}, "options"),
        ({"prompt": "x", "options": {"mirostat": 1}}, "options.mirostat"),
        ({"prompt": "x", "options": {"temperature": "hot"}}, "options.temperature"),
        ({"prompt": "x", "options": {"temperature": 9}}, "options.temperature"),
        ({"prompt": "x", "options": {"temperature": float("nan")}}, "options.temperature"),
        ({"prompt": "x", "options": {"temperature": True}}, "options.temperature"),
        ({"prompt": "x", "options": {"num_predict": 1.5}}, "options.num_predict"),
        ({"prompt": "x", "options": {"num_predict": 100000}}, "options.num_predict"),
        ({"prompt": "x", "options": {"max_tokens": 10, "num_predict": 10}}, "options.num_predict"),
        ({"prompt": "x", "options": {"stop": []}}, "options.stop"),
        ({"prompt": "x", "options": {"stop": [1]}}, "options.stop"),
        ({"prompt": "x", "think": 1}, "think"),
    ],
)
def test_each_invalid_field_is_named(body, field):
    rejects(body, field=field)


def test_limits_on_size_are_413_naming_the_field():
    limits = RequestLimits(max_prompt_chars=10, max_input_chars=15, max_messages=2)
    rejects({"prompt": "x" * 11}, field="prompt", status=413, limits=limits)
    rejects(
        {"messages": [{"role": "user", "content": "x" * 11}]}, field="messages[0].content", status=413, limits=limits
    )
    rejects({"messages": [{"role": "user", "content": "x"}] * 3}, field="messages", status=413, limits=limits)
    too_long = [{"role": "user", "content": "x" * 8}, {"role": "user", "content": "x" * 8}]
    rejects({"messages": too_long}, field="messages", status=413, limits=limits)


def test_model_allowlist():
    limits = RequestLimits(models_allowed=("a", "b"))
    assert parse_chat_request({"prompt": "x", "model": "a"}, limits).model == "a"
    error = rejects({"prompt": "x", "model": "c"}, field="model", limits=limits)
    assert error.code == "model_not_allowed"


@pytest.mark.parametrize("raw", [b"", b"{", b"\xff\xfe", b'{"a": 1,}', b"nul\x00"])
def test_bad_json_is_a_400_with_a_position(raw):
    with pytest.raises(ApiError) as caught:
        parse_json_body(raw)
    assert caught.value.status == 400
    assert caught.value.code == "invalid_json"
    assert caught.value.field == "body"


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 200_000,  # json.loads recurses per level: RecursionError, not JSONDecodeError
        b'{"prompt": "x", "options": {"seed": 1' + b"0" * 5000 + b"}}",  # past int's digit limit: ValueError
    ],
    ids=["deep_nesting", "huge_integer"],
)
def test_json_that_python_cannot_load_is_a_400_not_a_crash(raw):
    with pytest.raises(ApiError) as caught:
        parse_json_body(raw)
    assert (caught.value.status, caught.value.code, caught.value.field) == (400, "invalid_json", "body")


@pytest.mark.parametrize("option", ["temperature", "top_k", "num_predict", "seed"])
def test_an_integer_too_large_for_a_float_is_out_of_range_not_a_crash(option):
    # float(10**400) raises OverflowError; the value is simply out of range.
    error = rejects({"prompt": "x", "options": {option: 10**400}}, field=f"options.{option}")
    assert "between" in error.message


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"prompt": "a\ud800b"}, "prompt"),
        ({"messages": [{"role": "user", "content": "\udfff"}]}, "messages[0].content"),
        ({"prompt": "x", "model": "m\ud83d"}, "model"),
        ({"prompt": "x", "options": {"stop": ["\ud800"]}}, "options.stop"),
    ],
)
def test_lone_surrogates_are_rejected_naming_the_field(body, field):
    # JSON allows "\ud800", but no UTF-8 encoder downstream (logs, upstream body) does.
    rejects(body, field=field)


def test_surrogate_pairs_are_ordinary_text():
    assert parse_chat_request(parse_json_body(b'{"prompt": "\\ud83d\\ude00"}')).prompt == "\U0001f600"


def test_resumable_is_a_boolean_and_absent_means_the_servers_default():
    assert parse_chat_request({"prompt": "x"}).resumable is None
    assert parse_chat_request({"prompt": "x", "resumable": True}).resumable is True
    assert parse_chat_request({"prompt": "x", "resumable": False}).resumable is False
    rejects({"prompt": "x", "resumable": "yes"}, field="resumable")


# -- tools


WEATHER_TOOL = {
    "type": "function",
    "function": {"name": "get_weather", "description": "d", "parameters": {"type": "object"}},
}


def test_tools_and_a_tool_round_trip_in_ollamas_shape():
    from sse.chat import Tool
    from sse.events import ToolCall

    request = parse_chat_request(
        {
            "messages": [
                {"role": "user", "content": "Weather?"},
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}],
                },
                {"role": "tool", "tool_name": "get_weather", "content": "22°C"},
            ],
            "tools": [WEATHER_TOOL],
            "tool_choice": "required",
        }
    )
    assert request.tools == (Tool("get_weather", "d", {"type": "object"}),)
    assert request.tool_choice == "required"
    assert request.messages[1].tool_calls == (ToolCall("call_1_0", "get_weather", '{"city":"Paris"}', 0),)
    assert request.messages[2] == Message("tool", "22°C", tool_call_id="call_1_0", tool_name="get_weather")
    assert request.input_chars == len("Weather?") + len('{"city":"Paris"}') + len("22°C")


def test_tools_with_a_prompt_become_a_conversation():
    request = parse_chat_request({"prompt": "Weather?", "tools": [WEATHER_TOOL]})
    assert request.prompt is None
    assert request.messages == (Message("user", "Weather?"),)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"prompt": "x", "tools": {"a": 1}}, "tools"),
        ({"prompt": "x", "tools": [{"type": "function"}]}, "tools[0]"),
        ({"prompt": "x", "tools": [{"type": "function", "function": {"name": "a b"}}]}, "tools[0].function.name"),
        ({"prompt": "x", "tools": [WEATHER_TOOL, WEATHER_TOOL]}, "tools[1].function.name"),
        (
            {"prompt": "x", "tools": [{"type": "function", "function": {"name": "f", "parameters": []}}]},
            "tools[0].function.parameters",
        ),
        ({"prompt": "x", "tools": [WEATHER_TOOL], "tool_choice": "always"}, "tool_choice"),
        ({"messages": [{"role": "user", "content": "x", "tool_calls": []}]}, "messages[0].tool_calls"),
        ({"messages": [{"role": "user", "content": "x", "tool_call_id": "c"}]}, "messages[0].tool_call_id"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
        (
            {"messages": [{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "nope"}}]}]},
            "messages[0].tool_calls[0].function.arguments",
        ),
    ],
)
def test_malformed_tools_name_the_field(body, field):
    rejects(body, field=field)


def test_an_assistant_turn_of_only_tool_calls_is_not_empty():
    request = parse_chat_request(
        {"messages": [{"role": "assistant", "content": None, "tool_calls": [{"id": "c", "function": {"name": "f"}}]}]}
    )
    assert request.messages[0].tool_calls[0].arguments == "{}"
