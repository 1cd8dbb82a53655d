"""useChat's request (UI messages with parts) validated into the conversation a model reads."""

from __future__ import annotations

from typing import Any

import pytest

from sse.chat import Message, RequestLimits
from sse.errors import ApiError
from sse.events import ToolCall
from sse.uimessage_request import parse_ui_request

WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}


def user(text: str, id: str = "u1") -> dict[str, Any]:
    return {"id": id, "role": "user", "parts": [{"type": "text", "text": text}]}


def body(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"id": "chat-1", "messages": list(messages), "trigger": "submit-message", "messageId": None, **extra}


def rejects(request: dict[str, Any], *, field: str) -> ApiError:
    with pytest.raises(ApiError) as caught:
        parse_ui_request(request, RequestLimits())
    assert caught.value.status == 400, caught.value.message
    assert caught.value.field == field, caught.value.message
    return caught.value


def test_what_default_chat_transport_sends() -> None:
    request = parse_ui_request(
        body({"id": "s", "role": "system", "parts": [{"type": "text", "text": "be brief"}]}, user("hi"))
    )
    assert request.chat_id == "chat-1"
    assert request.message_id is None
    assert request.chat.messages == (Message("system", "be brief"), Message("user", "hi"))


def test_body_options_like_api_chat() -> None:
    request = parse_ui_request(body(user("hi"), model="m", think=True, options={"temperature": 0.1}, tools=[WEATHER]))
    assert request.chat.model == "m"
    assert request.chat.think is True
    assert request.chat.options == {"temperature": 0.1}
    assert [t.name for t in request.chat.tools] == ["get_weather"]


def test_unknown_body_fields_are_refused_by_name() -> None:
    rejects(body(user("hi"), modell="m"), field="modell")


def test_an_assistant_answer_with_reasoning_and_steps() -> None:
    assistant = {
        "id": "a1",
        "role": "assistant",
        "parts": [
            {"type": "step-start"},
            {"type": "reasoning", "text": "thinking..."},
            {"type": "text", "text": "Let me check."},
            {
                "type": "tool-get_weather",
                "toolCallId": "call_1",
                "state": "output-available",
                "input": {"city": "Paris"},
                "output": {"temperature": 22},
            },
            {"type": "step-start"},
            {"type": "text", "text": "It is 22°C."},
        ],
    }
    request = parse_ui_request(body(user("Weather?"), assistant, user("Thanks", "u2")))
    assert request.chat.messages == (
        Message("user", "Weather?"),
        Message("assistant", "Let me check.", (ToolCall("call_1", "get_weather", '{"city":"Paris"}', 0),)),
        Message("tool", '{"temperature": 22}', tool_call_id="call_1", tool_name="get_weather"),
        Message("assistant", "It is 22°C."),
        Message("user", "Thanks"),
    )


def test_a_tool_result_sent_back_continues_the_assistant_message() -> None:
    assistant = {
        "id": "a1",
        "role": "assistant",
        "parts": [
            {"type": "step-start"},
            {
                "type": "dynamic-tool",
                "toolName": "now",
                "toolCallId": "c",
                "state": "output-error",
                "input": {},
                "errorText": "no clock",
            },
        ],
    }
    request = parse_ui_request(body(user("Time?"), assistant))
    assert request.message_id == "a1"
    assert request.chat.messages is not None
    assert request.chat.messages[-1] == Message("tool", "no clock", tool_call_id="c", tool_name="now")


def test_calls_still_waiting_for_output_are_left_out() -> None:
    assistant = {
        "id": "a1",
        "role": "assistant",
        "parts": [{"type": "tool-get_weather", "toolCallId": "c", "state": "input-available", "input": {}}],
    }
    request = parse_ui_request(body(user("Weather?"), assistant))
    assert request.chat.messages == (Message("user", "Weather?"),)


@pytest.mark.parametrize(
    ("request_body", "field"),
    [
        (body(user("hi"), id="a/b"), "id"),
        ({"id": "c", "messages": []}, "messages"),
        (body(user("hi"), trigger="resume"), "trigger"),
        (body({"id": "u", "role": "tool", "parts": []}), "messages[0].role"),
        (body({"id": "u", "role": "user", "parts": [{"type": "file", "url": "x"}]}), "messages[0].parts[0]"),
        (body({"id": "u", "role": "user", "parts": [{"type": "text", "text": 1}]}), "messages[0].parts[0].text"),
    ],
)
def test_malformed_requests_name_the_field(request_body: dict[str, Any], field: str) -> None:
    rejects(request_body, field=field)
