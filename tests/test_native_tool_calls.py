"""Tool calls on llm-sse's own ``/api/chat``: the agreed ``tool_call`` frame, and a round trip
(call, the client's result, the final answer) through the fake Ollama and the fake
OpenAI-compatible server, each speaking its real tool-call format."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from tests.fakes.ollama import FakeOllama, Script, token_lines, tool_call_lines
from tests.fakes.openai import FakeOpenAI, chunks, tool_call_chunks
from tests.fakes.openai import Script as RouterScript
from tests.helpers import Service, StreamRecords, naive_parse, post_chat, text_of

MakeService = Callable[..., Awaitable[Service]]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
ASK = {"role": "user", "content": "Weather in Paris?"}


async def test_the_tool_call_frame_is_the_agreed_one(
    service: Service, client: aiohttp.ClientSession, fake_ollama: FakeOllama
) -> None:
    fake_ollama.push(Script(tool_call_lines([("call_0", "get_weather", {"city": "Paris"})], thinking=["Hm."])))
    async with client.post(service.url + "/api/chat", json={"messages": [ASK], "tools": [WEATHER]}) as response:
        body = await response.text()
    assert (
        'event: tool_call\ndata: {"id":"call_0","name":"get_weather","arguments":"{\\"city\\":\\"Paris\\"}"}\nid: 3\n\n'
        in body
    )
    frames = naive_parse(body)
    assert [name for name, _ in frames] == ["meta", "thinking", "tool_call", "done"]
    assert frames[-1][1]["finish_reason"] == "tool_calls"


async def test_a_round_trip_through_ollama(
    service: Service, client: aiohttp.ClientSession, fake_ollama: FakeOllama
) -> None:
    records = StreamRecords(service.app)
    fake_ollama.push(Script(tool_call_lines([(None, "get_weather", {"city": "Paris"})])))
    fake_ollama.push(Script(token_lines(["It is", " 22°C."])))
    _, frames = await post_chat(client, service, {"messages": [ASK], "tools": [WEATHER]})
    (call,) = [f.data for f in frames if f.event == "tool_call"]
    assert (await records.next())["tool_calls"] == 1
    # Sent back in Ollama's shape: arguments as an object, the result by the tool's name.
    arguments = json.loads(call["arguments"])
    history: list[dict[str, Any]] = [
        ASK,
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"function": {"name": call["name"], "arguments": arguments}}],
        },
        {"role": "tool", "tool_name": "get_weather", "content": "22°C"},
    ]
    _, frames = await post_chat(client, service, {"messages": history, "tools": [WEATHER]})
    assert text_of(frames) == "It is 22°C."
    assert frames[-1].data["finish_reason"] == "stop"
    sent = fake_ollama.requests[-1].body["messages"]
    assert sent[1]["tool_calls"][0]["function"]["arguments"] == {"city": "Paris"}
    assert sent[2] == {"role": "tool", "content": "22°C", "tool_name": "get_weather", "tool_call_id": "call_1_0"}


async def test_a_round_trip_through_an_openai_upstream(
    make_service: MakeService, client: aiohttp.ClientSession, fake_openrouter: FakeOpenAI, openrouter: dict[str, Any]
) -> None:
    service = await make_service(provider="openrouter", **openrouter)
    fake_openrouter.push(RouterScript(tool_call_chunks([("call_1", "get_weather", ['{"city"', ':"Paris"}'])])))
    fake_openrouter.push(RouterScript(chunks(["Sunny."])))
    _, frames = await post_chat(client, service, {"messages": [ASK], "tools": [WEATHER], "tool_choice": "required"})
    (call,) = [f.data for f in frames if f.event == "tool_call"]
    assert call == {"id": "call_1", "name": "get_weather", "arguments": '{"city":"Paris"}'}
    assert fake_openrouter.requests[-1].body["tool_choice"] == "required"
    history = [
        ASK,
        {
            "role": "assistant",
            "tool_calls": [{"id": "call_1", "function": {"name": "get_weather", "arguments": call["arguments"]}}],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": json.dumps({"temperature": 22})},
    ]
    _, frames = await post_chat(client, service, {"messages": history, "tools": [WEATHER]})
    assert text_of(frames) == "Sunny."
    sent = fake_openrouter.requests[-1].body["messages"]
    assert sent[1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}
        ],
    }
    assert sent[2] == {"role": "tool", "content": '{"temperature": 22}', "tool_call_id": "call_1"}
