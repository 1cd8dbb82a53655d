"""The JavaScript clients people hold, unmodified, on Node: OpenAI's SDK (``openai`` on npm)
against ``/v1`` and the Vercel AI SDK's chat (``ai``: ``AbstractChat`` + ``DefaultChatTransport``,
the logic behind ``useChat``) against ``/api/ui-chat``, with the real service and the fake
upstreams speaking their real tool-call formats.

The packages are pinned in tests/clients/package-lock.json and installed by
``make clients`` into a cache outside the tree (``LLM_SSE_CLIENTS_DIR``).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.ollama import FakeOllama, Line, Script, token_lines, tool_call_lines
from tests.fakes.openai import FakeOpenAI, chunks, tool_call_chunks
from tests.fakes.openai import Script as RouterScript
from tests.fakes.steps import Hang
from tests.helpers import Service
from tests.realparts import missing

MakeService = Callable[..., Awaitable[Service]]
CLIENTS = Path(__file__).resolve().parent / "clients"
# Where `make clients` installs them (the Makefile exports the same path).
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
CLIENTS_DIR = Path(os.environ.get("LLM_SSE_CLIENTS_DIR") or CACHE / "llm-sse" / "node")
MODEL = "llama3.2:latest"
ROUTER_MODEL = "openai/gpt-4o-mini"


@pytest.fixture(scope="module")
def node() -> str:
    executable = shutil.which("node")
    if executable is None:
        missing("node", "`make system-deps` installs nodejs")
    for package in ("openai", "ai"):
        if not (CLIENTS_DIR / "node_modules" / package).is_dir():
            missing(f"the npm package {package!r} in {CLIENTS_DIR}", "`make clients` installs the pinned clients")
    return executable


async def run(node: str, script: str, *args: str) -> dict[str, Any]:
    """Run a client script; its one line of JSON."""
    process = await asyncio.create_subprocess_exec(
        node,
        str(CLIENTS / script),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "LLM_SSE_CLIENTS_DIR": str(CLIENTS_DIR)},
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode == 0, stderr.decode()
    result: dict[str, Any] = json.loads(stdout.decode().strip().splitlines()[-1])
    return result


def openai_js(node: str, service: Service, scenario: str, model: str = MODEL, key: str = "") -> Awaitable[Any]:
    return run(node, "openai_client.mjs", service.url + "/v1", scenario, model, key or "unused")


def ui_chat(node: str, service: Service, scenario: str, model: str = MODEL, key: str = "") -> Awaitable[Any]:
    return run(node, "ui_chat.mjs", service.url + "/api/ui-chat", scenario, model, key)


@pytest.fixture
async def router_service(make_service: MakeService, openrouter: dict[str, Any]) -> Service:
    return await make_service(provider="openrouter", **openrouter)


# -- OpenAI's JavaScript SDK


async def test_openai_js_streams(node: str, service: Service) -> None:
    result = await openai_js(node, service, "stream")
    assert result["text"] == "Hello from the fake model."
    assert result["finish"] == ["stop"]
    assert result["usage"]["completion_tokens"] == 6
    assert result["id"].startswith("chatcmpl-")


async def test_openai_js_without_streaming(node: str, service: Service) -> None:
    completion = await openai_js(node, service, "complete")
    assert completion["choices"][0]["message"]["content"] == "Hello from the fake model."
    assert completion["usage"]["total_tokens"] == 32


async def test_openai_js_lists_models(node: str, service: Service) -> None:
    assert await openai_js(node, service, "models") == {"ids": [MODEL, "qwen3:4b"], "objects": ["model"]}


async def test_openai_js_abort_stops_the_model(node: str, service: Service, fake_ollama: FakeOllama) -> None:
    fake_ollama.push(Script([token_lines(["partial"])[0], Hang()]))
    result = await openai_js(node, service, "abort")
    assert result == {"text": "partial", "aborted": True}
    await asyncio.wait_for(fake_ollama.requests[-1].disconnected.wait(), 5)


async def test_openai_js_tool_round_trip_through_ollama(node: str, service: Service, fake_ollama: FakeOllama) -> None:
    fake_ollama.push(Script(tool_call_lines([("call_k3j9x2ab", "get_weather", {"city": "Paris"})])))
    fake_ollama.push(Script(token_lines(["Sunny", ", 22°C."])))
    result = await openai_js(node, service, "tools")
    assert "error" not in result, result
    assert result["finish"] == "tool_calls"
    assert [c["function"]["name"] for c in result["calls"]] == ["get_weather"]
    assert result["answer"] == "Sunny, 22°C."
    assert fake_ollama.requests[-1].body["messages"][-1] == {
        "role": "tool",
        "content": "22°C and sunny in Paris",
        "tool_name": "get_weather",
        "tool_call_id": "call_k3j9x2ab",
    }


async def test_openai_js_tool_round_trip_through_an_openai_upstream(
    node: str, router_service: Service, fake_openrouter: FakeOpenAI
) -> None:
    fake_openrouter.push(RouterScript(tool_call_chunks([("call_5wBV", "get_weather", ['{"city":', '"Paris"}'])])))
    fake_openrouter.push(RouterScript(chunks(["Sunny", " in Paris."], model=ROUTER_MODEL)))
    result = await openai_js(node, router_service, "tools", ROUTER_MODEL)
    assert result["finish"] == "tool_calls"
    assert result["calls"][0]["id"] == "call_5wBV"
    assert result["answer"] == "Sunny in Paris."
    sent = fake_openrouter.requests[-1].body["messages"]
    assert sent[1]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city":"Paris"}'}
    assert sent[2] == {"role": "tool", "content": "22°C and sunny in Paris", "tool_call_id": "call_5wBV"}


async def test_openai_js_errors_are_typed(node: str, service: Service, fake_ollama: FakeOllama) -> None:
    bad = await openai_js(node, service, "bad-request")
    assert (bad["error"], bad["status"], bad["param"], bad["type"]) == (
        "BadRequestError",
        400,
        "temperature",
        "invalid_request_error",
    )
    missing = await openai_js(node, service, "stream", "nope")
    assert (missing["error"], missing["status"]) == ("NotFoundError", 404)
    fake_ollama.push(Script([token_lines(["Once"])[0], Line({"error": "the runner crashed"})]))
    midstream = await openai_js(node, service, "stream-error")
    assert midstream["text"] == "Once"
    assert midstream["error"] == "APIError"
    assert "the runner crashed" in midstream["message"]


async def test_openai_js_needs_the_key(node: str, make_service: MakeService) -> None:
    key = "k-js-0123456789abcdefghijkl"
    service = await make_service(api_keys=key)
    refused = await openai_js(node, service, "stream")
    assert (refused["error"], refused["status"]) == ("AuthenticationError", 401)
    assert (await openai_js(node, service, "stream", key=key))["text"] == "Hello from the fake model."


# -- the AI SDK's chat (useChat's logic)


def parts_of(message: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [p for p in message["parts"] if p["type"] == kind]


async def test_ui_chat_streams_text_and_reasoning(node: str, service: Service, fake_ollama: FakeOllama) -> None:
    fake_ollama.push(Script(token_lines(["Hello", " there."], thinking=["Greeting."])))
    result = await ui_chat(node, service, "text")
    assert result["status"] == "ready"
    assert result["error"] is None
    user, assistant = result["messages"]
    assert user["role"] == "user"
    assert assistant["role"] == "assistant"
    assert [p["text"] for p in parts_of(assistant, "text")] == ["Hello there."]
    assert [p["text"] for p in parts_of(assistant, "reasoning")] == ["Greeting."]
    (request,) = result["requests"]
    assert request["body"]["trigger"] == "submit-message"
    assert request["body"]["id"] == "chat-0123456789"


@pytest.mark.parametrize("upstream", ["ollama", "openai"])
async def test_ui_chat_tool_round_trip(
    node: str,
    upstream: str,
    service: Service,
    router_service: Service,
    fake_ollama: FakeOllama,
    fake_openrouter: FakeOpenAI,
) -> None:
    """The chat gets a tool call, runs the tool in its onToolCall, sends the output back by
    itself (sendAutomaticallyWhen), and the model's answer continues the same message."""
    if upstream == "ollama":
        target, model = service, MODEL
        fake_ollama.push(Script(tool_call_lines([("call_k3j9x2ab", "get_weather", {"city": "Paris"})])))
        fake_ollama.push(Script(token_lines(["It is 22°C."])))
    else:
        target, model = router_service, ROUTER_MODEL
        fake_openrouter.push(RouterScript(tool_call_chunks([("call_k3j9x2ab", "get_weather", ['{"city":"Paris"}'])])))
        fake_openrouter.push(RouterScript(chunks(["It is 22°C."], model=ROUTER_MODEL)))
    result = await ui_chat(node, target, "tools", model)
    assert result["error"] is None
    assert result["status"] == "ready"
    _user, assistant = result["messages"]
    (tool,) = parts_of(assistant, "tool-get_weather")
    assert tool["toolCallId"] == "call_k3j9x2ab"
    assert tool["state"] == "output-available"
    assert tool["input"] == {"city": "Paris"}
    assert [p["text"] for p in parts_of(assistant, "text")] == ["It is 22°C."]
    assert len(result["requests"]) == 2
    sent = (fake_ollama if upstream == "ollama" else fake_openrouter).requests[-1].body["messages"]
    assert sent[-1]["role"] == "tool"
    assert json.loads(sent[-1]["content"]) == {"temperature": 22, "city": "Paris"}


async def test_ui_chat_stop_stops_the_model(node: str, service: Service, fake_ollama: FakeOllama) -> None:
    fake_ollama.push(Script([token_lines(["partial"])[0], Hang()]))
    result = await ui_chat(node, service, "stop")
    assert result["status"] == "ready"
    await asyncio.wait_for(fake_ollama.requests[-1].disconnected.wait(), 5)


async def test_ui_chat_errors_reach_the_chat(node: str, service: Service, fake_ollama: FakeOllama) -> None:
    refused = await ui_chat(node, service, "bad-model")
    assert refused["status"] == "error"
    assert json.loads(refused["error"])["error"]["field"] == "model"
    fake_ollama.push(Script([token_lines(["Once"])[0], Line({"error": "the runner crashed"})]))
    midstream = await ui_chat(node, service, "text")
    assert midstream["status"] == "error"
    assert "the runner crashed" in midstream["error"]


async def test_ui_chat_resume_finds_nothing_to_resume(node: str, service: Service) -> None:
    result = await ui_chat(node, service, "resume")
    assert result["error"] is None
    assert result["messages"] == []
    assert result["requests"] == [
        {"url": service.url + "/api/ui-chat/chat-0123456789/stream", "method": "GET", "body": None}
    ]


async def test_ui_chat_needs_the_key(node: str, make_service: MakeService) -> None:
    key = "k-ui-0123456789abcdefghijkl"
    service = await make_service(api_keys=key)
    refused = await ui_chat(node, service, "text")
    assert refused["status"] == "error"
    assert json.loads(refused["error"])["error"]["code"] == "unauthorized"
    assert (await ui_chat(node, service, "text", key=key))["status"] == "ready"
