"""Tool calls through the providers: forwarded in each upstream's format, parsed back into
whole ``ToolCall`` events -- against the fake Ollama and the fake OpenAI-compatible server
speaking their real tool-call formats (and replaying the recorded transcripts)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from sse.chat import ChatRequest, Message, Tool, parse_chat_request
from sse.events import Done, Event, Thinking, Token, ToolCall
from sse.providers.ollama import OllamaProvider
from sse.providers.openai import OpenAIProvider
from tests.fakes.ollama import FakeOllama, Line, tool_call_lines
from tests.fakes.ollama import Script as OllamaScript
from tests.fakes.openai import FIXTURES, Data, FakeOpenAI, Gate, Raw, Script, tool_call_chunks

WEATHER = Tool(
    "get_weather",
    "The weather in a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
ASK = ChatRequest(messages=(Message("user", "Weather in Paris?"),), tools=(WEATHER,))


@pytest.fixture
async def ollama(fake_ollama: FakeOllama) -> AsyncIterator[OllamaProvider]:
    provider = OllamaProvider(fake_ollama.url, default_model="llama3.2:latest")
    await provider.start()
    yield provider
    await provider.close()


@pytest.fixture
async def fake_openai() -> AsyncIterator[FakeOpenAI]:
    fake = FakeOpenAI(prefix="/v1")
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def openai(fake_openai: FakeOpenAI) -> AsyncIterator[OpenAIProvider]:
    provider = OpenAIProvider(fake_openai.url)
    await provider.start()
    yield provider
    await provider.close()


async def events_of(provider: Any, request: ChatRequest, model: str | None = None) -> list[Event]:
    if model is None:
        model = "llama3.2:latest" if isinstance(provider, OllamaProvider) else "openai/gpt-4o-mini"
    return [event async for event in provider.stream(request, model)]


def calls_of(events: list[Event]) -> list[ToolCall]:
    return [e for e in events if isinstance(e, ToolCall)]


def replay_ndjson(name: str) -> OllamaScript:
    lines = (FIXTURES / name).read_bytes().splitlines(keepends=True)
    return OllamaScript([Line(json.loads(line)) for line in lines])


# -- Ollama


async def test_ollama_tool_call_transcript_becomes_one_whole_call_and_finish_tool_calls(
    ollama: OllamaProvider, fake_ollama: FakeOllama
) -> None:
    fake_ollama.push(replay_ndjson("ollama/chat_stream_tool_calls.ndjson"))
    events = await events_of(ollama, ASK, "qwen3:8b")
    assert "".join(e.text for e in events if isinstance(e, Thinking)) == (
        "The user wants the weather in Tokyo. I should call get_weather."
    )
    assert [type(e) for e in events if not isinstance(e, Thinking)] == [ToolCall, Done]
    assert calls_of(events) == [ToolCall("call_k3j9x2ab", "get_weather", '{"city":"Tokyo"}', 0)]
    done = events[-1]
    assert isinstance(done, Done)
    assert done.finish_reason == "tool_calls"  # Ollama itself says "stop"
    assert done.usage.completion_tokens == 15


async def test_ollama_call_without_an_id_gets_one_in_ollamas_format(
    ollama: OllamaProvider, fake_ollama: FakeOllama
) -> None:
    fake_ollama.push(OllamaScript(tool_call_lines([(None, "get_weather", {"city": "Paris"}), (None, "now", {})])))
    calls = calls_of(await events_of(ollama, ASK))
    assert [(c.name, c.arguments, c.index) for c in calls] == [
        ("get_weather", '{"city":"Paris"}', 0),
        ("now", "{}", 1),
    ]
    assert all(re.fullmatch(r"call_[0-9a-f]{8}", c.id) for c in calls)
    assert calls[0].id != calls[1].id


async def test_ollama_arguments_keep_their_unicode_and_order(ollama: OllamaProvider, fake_ollama: FakeOllama) -> None:
    fake_ollama.push(OllamaScript(tool_call_lines([("call_1", "find", {"z": "Zürich <&>", "a": [1, 2]})])))
    (call,) = calls_of(await events_of(ollama, ASK))
    assert json.loads(call.arguments) == {"z": "Zürich <&>", "a": [1, 2]}
    assert call.arguments.index('"z"') < call.arguments.index('"a"')


async def test_ollama_text_and_a_call_in_one_answer(ollama: OllamaProvider, fake_ollama: FakeOllama) -> None:
    fake_ollama.push(
        OllamaScript(tool_call_lines([("c", "get_weather", {"city": "Rome"})], text_before=["Let me check."]))
    )
    events = await events_of(ollama, ASK)
    assert [type(e) for e in events] == [Token, ToolCall, Done]


async def test_ollama_gets_tools_calls_and_results_in_its_own_format(
    ollama: OllamaProvider, fake_ollama: FakeOllama
) -> None:
    request = parse_chat_request(
        {
            "messages": [
                {"role": "user", "content": "Weather in Paris?"},
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [
                        {
                            "id": "call_a",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "call_a", "content": "22°C, sunny"},
            ],
            "tools": [WEATHER.as_openai()],
        }
    )
    await events_of(ollama, request)
    sent = fake_ollama.requests[-1]
    assert sent.path == "/api/chat"
    assert sent.body["tools"] == [WEATHER.as_openai()]
    assistant, result = sent.body["messages"][1:]
    assert assistant["tool_calls"] == [
        {"id": "call_a", "function": {"index": 0, "name": "get_weather", "arguments": {"city": "Paris"}}}
    ]
    assert result == {"role": "tool", "content": "22°C, sunny", "tool_name": "get_weather", "tool_call_id": "call_a"}


async def test_ollama_tool_choice_none_sends_no_tools(ollama: OllamaProvider, fake_ollama: FakeOllama) -> None:
    await events_of(ollama, ChatRequest(messages=ASK.messages, tools=(WEATHER,), tool_choice="none"))
    assert "tools" not in fake_ollama.requests[-1].body


async def test_a_plain_answer_from_ollama_is_unchanged(ollama: OllamaProvider, fake_ollama: FakeOllama) -> None:
    events = await events_of(ollama, ASK, "llama3.2:latest")
    done = events[-1]
    assert isinstance(done, Done)
    assert done.finish_reason == "stop"
    assert not calls_of(events)


# -- OpenAI-compatible


@pytest.mark.parametrize(
    ("transcript", "call_id", "arguments"),
    [
        ("openai/chat_stream_tool_call.sse", "call_5wBV98AvGPwOyC6a2HtKh85w", '{"city":"Paris"}'),
        ("openrouter/tool_call_stream_3_comments.sse", "toolu_bdrk_01AVRkzbigpMbNJ3zjnuQ6ZE", '{"city": "Paris"}'),
    ],
)
@pytest.mark.parametrize("split", [None, 1])
async def test_recorded_tool_call_fragments_are_reassembled(
    openai: OpenAIProvider, fake_openai: FakeOpenAI, transcript: str, call_id: str, arguments: str, split: int | None
) -> None:
    fake_openai.push(Script.transcript(transcript, split=split))
    events = await events_of(openai, ASK)
    assert calls_of(events) == [ToolCall(call_id, "get_weather", arguments, 0)]
    assert [type(e) for e in events] == [ToolCall, Done]
    done = events[-1]
    assert isinstance(done, Done)
    # OpenAI's forced tool_choice ends with "stop": still reported as tool calls.
    assert done.finish_reason == "tool_calls"


async def test_parallel_calls_come_out_whole_and_in_index_order(
    openai: OpenAIProvider, fake_openai: FakeOpenAI
) -> None:
    fake_openai.push(
        Script(
            tool_call_chunks(
                [
                    ("call_1", "get_weather", ['{"ci', 'ty":"Paris"}']),
                    ("call_2", "get_weather", ['{"city":', '"Rome"}']),
                ]
            )
        )
    )
    events = await events_of(openai, ASK)
    assert calls_of(events) == [
        ToolCall("call_1", "get_weather", '{"city":"Paris"}', 0),
        ToolCall("call_2", "get_weather", '{"city":"Rome"}', 1),
    ]
    done = events[-1]
    assert isinstance(done, Done)
    assert done.finish_reason == "tool_calls"
    assert done.usage.prompt_tokens == 67


async def test_the_first_call_is_handed_out_when_the_second_begins(
    openai: OpenAIProvider, fake_openai: FakeOpenAI
) -> None:
    """A long answer of several calls streams call by call, not all at the finish."""
    steps = tool_call_chunks([("call_1", "a", ["{}"]), ("call_2", "b", ["{}"])])
    gate = asyncio.Event()
    steps.insert(3, Gate(gate))  # after the second call's first fragment, until the first call is out
    fake_openai.push(Script(steps))
    seen: list[str] = []
    async for event in openai.stream(ASK, "openai/gpt-4o-mini"):
        if isinstance(event, ToolCall):
            seen.append(event.id)
            assert gate.is_set() == (event.id == "call_2")
            gate.set()
    assert seen == ["call_1", "call_2"]


async def test_openai_gets_tools_choice_calls_and_results_in_its_format(
    openai: OpenAIProvider, fake_openai: FakeOpenAI
) -> None:
    request = parse_chat_request(
        {
            "messages": [
                {"role": "user", "content": "Weather in Paris?"},
                {
                    "role": "assistant",
                    "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}],
                },
                {"role": "tool", "tool_name": "get_weather", "content": "22°C"},
            ],
            "tools": [WEATHER.as_openai()],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        }
    )
    await events_of(openai, request)
    body = fake_openai.requests[-1].body
    assert body["tools"] == [WEATHER.as_openai()]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assistant, result = body["messages"][1:]
    assert assistant == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_1_0", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}
        ],
    }
    # A result given by tool name (Ollama's way) answers the call by its id.
    assert result == {"role": "tool", "content": "22°C", "tool_call_id": "call_1_0"}


async def test_no_tools_no_tool_fields_upstream(openai: OpenAIProvider, fake_openai: FakeOpenAI) -> None:
    await events_of(openai, ChatRequest(messages=ASK.messages))
    body = fake_openai.requests[-1].body
    assert "tools" not in body
    assert "tool_choice" not in body


async def test_a_call_without_a_name_is_skipped_not_invented(openai: OpenAIProvider, fake_openai: FakeOpenAI) -> None:
    head = {"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    nameless = {"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}}
    finish = {"index": 0, "delta": {}, "finish_reason": "stop"}
    fake_openai.push(
        Script([Data({**head, "choices": [nameless]}), Data({**head, "choices": [finish]}), Raw(b"data: [DONE]\n\n")])
    )
    events = await events_of(openai, ASK)
    assert not calls_of(events)
    done = events[-1]
    assert isinstance(done, Done)
    assert done.finish_reason == "stop"
