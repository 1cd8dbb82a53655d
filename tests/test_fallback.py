"""Fallback between providers (Ollama first, OpenRouter second), through the whole service.

The rules: a request moves to the next provider on connect failure, timeout
before the first token, 429 or 5xx -- only before anything reached the
client.  Once a token was sent, a failure is an ``event: error``, never
spliced with another model's answer.  ``meta`` names the provider that
serves; the stream's log line lists the failed attempts; a provider that
failed is skipped for the cool-down.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from tests.fakes.ollama import MODEL, Drop, FakeOllama, Hang, Line, Script, _chat_line
from tests.fakes.openai import FakeOpenAI
from tests.fakes.openai import Script as RouterScript
from tests.fakes.tcp import DeadServer, closed_port_url
from tests.helpers import Service, StreamRecords, post_chat, text_of

MakeService = Callable[..., Awaitable[Service]]
HELLO = {"messages": [{"role": "user", "content": "Say hello"}]}
ROUTER_ANSWER = "Hello from the fake router."


@pytest.fixture
def both(openrouter: dict[str, Any]) -> dict[str, Any]:
    """Settings for ``ollama,openrouter`` (Ollama's URL is the fake's unless overridden)."""
    return {"provider": "ollama,openrouter", **openrouter}


@pytest.fixture
async def dead_server() -> AsyncIterator[DeadServer]:
    dead = DeadServer()
    await dead.start()
    yield dead
    await dead.close()


async def test_ollama_down_the_second_provider_serves_and_meta_names_it(
    make_service: MakeService, both: dict[str, Any], fake_openrouter: FakeOpenAI, client: aiohttp.ClientSession
) -> None:
    service = await make_service(**both, ollama_url=closed_port_url())
    records = StreamRecords(service.app)
    response, frames = await post_chat(client, service, HELLO)
    assert response.status == 200
    assert frames[0].event == "meta"
    assert frames[0].data["provider"] == "openrouter"
    assert frames[0].data["model"] == "openai/gpt-4o-mini"
    assert text_of(frames) == ROUTER_ANSWER
    assert frames[-1].event == "done"
    line = await records.next()
    assert line["provider"] == "openrouter"
    assert line["outcome"] == "done"
    [attempt] = line["attempts"]
    assert attempt.startswith("ollama: upstream_unavailable: ollama is unreachable")


@pytest.mark.parametrize(
    ("script", "code"),
    [
        (Script(status=429, error="too many requests", headers={"Retry-After": "3"}), "upstream_rate_limited"),
        (Script(status=500, error="llama runner process has terminated"), "upstream_error"),
        (
            Script(status=503, error="server busy, please try again.  maximum pending requests exceeded"),
            "upstream_busy",
        ),
    ],
)
async def test_429_or_5xx_before_the_first_token_moves_to_the_next_provider(
    make_service: MakeService,
    both: dict[str, Any],
    fake_ollama: FakeOllama,
    client: aiohttp.ClientSession,
    script: Script,
    code: str,
) -> None:
    service = await make_service(**both)
    records = StreamRecords(service.app)
    fake_ollama.push(script)
    _, frames = await post_chat(client, service, HELLO)
    assert frames[0].data["provider"] == "openrouter"
    assert text_of(frames) == ROUTER_ANSWER
    assert (await records.next())["attempts"] == [f"ollama: {code}: {script.error}"]


async def test_timeout_before_the_first_token_moves_on_and_closes_the_first(
    make_service: MakeService, both: dict[str, Any], fake_ollama: FakeOllama, client: aiohttp.ClientSession
) -> None:
    service = await make_service(**both, first_token_timeout=0.5)
    records = StreamRecords(service.app)
    fake_ollama.push(Script([Hang()]))  # status 200, then nothing: a model that never loads
    _, frames = await post_chat(client, service, HELLO)
    assert frames[0].data["provider"] == "openrouter"
    assert text_of(frames) == ROUTER_ANSWER
    assert (await records.next())["attempts"] == ["ollama: upstream_timeout: ollama sent nothing within 0.5 s"]
    async with asyncio.timeout(5):
        await fake_ollama.requests[0].disconnected.wait()


@pytest.mark.parametrize(
    ("after_token", "code"),
    [
        (Drop(), "upstream_disconnected"),
        (Line({"error": "an error was encountered while running the model"}), "upstream_error"),
    ],
)
async def test_failure_after_a_token_is_an_error_frame_never_the_next_provider(
    make_service: MakeService,
    both: dict[str, Any],
    fake_ollama: FakeOllama,
    fake_openrouter: FakeOpenAI,
    client: aiohttp.ClientSession,
    after_token: Any,
    code: str,
) -> None:
    service = await make_service(**both)
    records = StreamRecords(service.app)
    fake_ollama.push(Script([Line(_chat_line(MODEL, "Once")), after_token]))
    response, frames = await post_chat(client, service, HELLO)
    assert response.status == 200
    assert frames[0].data["provider"] == "ollama"
    assert text_of(frames) == "Once"
    assert [f.event for f in frames] == ["meta", "token", "error"]
    assert frames[-1].data["code"] == code
    assert fake_openrouter.requests == []
    line = await records.next()
    assert line["outcome"] == code
    assert "attempts" not in line


async def test_unknown_model_neither_falls_back_nor_benches_the_provider(
    make_service: MakeService,
    both: dict[str, Any],
    fake_ollama: FakeOllama,
    fake_openrouter: FakeOpenAI,
    client: aiohttp.ClientSession,
) -> None:
    """A 404 is the request's fault, not the provider's: the next request still goes to Ollama."""
    service = await make_service(**both, provider_cooldown=60)
    response, body = await post_chat(client, service, {**HELLO, "model": "no-such-model"})
    assert response.status == 404
    assert body["error"]["code"] == "model_not_found"
    assert fake_openrouter.requests == []
    _, frames = await post_chat(client, service, HELLO)
    assert frames[0].data["provider"] == "ollama"
    assert len(fake_ollama.requests) == 2


async def test_cooldown_skips_a_dead_provider_without_connecting_to_it(
    make_service: MakeService, both: dict[str, Any], dead_server: DeadServer, client: aiohttp.ClientSession
) -> None:
    service = await make_service(**both, ollama_url=dead_server.url, provider_cooldown=60)
    records = StreamRecords(service.app)

    _, frames = await post_chat(client, service, HELLO)
    assert frames[0].data["provider"] == "openrouter"
    tried = dead_server.accepted
    assert tried >= 1
    [attempt] = (await records.next())["attempts"]
    assert attempt.startswith("ollama: ")

    _, frames = await post_chat(client, service, HELLO)
    assert frames[0].data["provider"] == "openrouter"
    assert text_of(frames) == ROUTER_ANSWER
    assert dead_server.accepted == tried  # not one connection attempt during the cool-down
    second = await records.next()
    assert second["cooling_down"] == ["ollama"]
    assert "attempts" not in second


async def test_without_cooldown_a_dead_provider_is_tried_every_time(
    make_service: MakeService, both: dict[str, Any], dead_server: DeadServer, client: aiohttp.ClientSession
) -> None:
    service = await make_service(**both, ollama_url=dead_server.url, provider_cooldown=0)
    tried = []
    for _ in range(2):
        _, frames = await post_chat(client, service, HELLO)
        assert frames[0].data["provider"] == "openrouter"
        tried.append(dead_server.accepted)
    assert 0 < tried[0] < tried[1]


async def test_when_every_provider_fails_the_client_gets_the_last_error_and_the_log_both(
    make_service: MakeService, both: dict[str, Any], fake_openrouter: FakeOpenAI, client: aiohttp.ClientSession
) -> None:
    service = await make_service(**both, ollama_url=closed_port_url())
    records = StreamRecords(service.app)
    fake_openrouter.push(RouterScript.error(503, "No instances available", headers={"Retry-After": "4"}))
    response, body = await post_chat(client, service, HELLO)
    assert response.status == 503
    assert response.headers["Retry-After"] == "4"
    assert body["error"]["code"] == "upstream_busy"
    line = await records.next()
    assert [a.split(":")[0] for a in line["attempts"]] == ["ollama", "openrouter"]
    assert line["outcome"] == "upstream_busy"


async def test_each_provider_maps_the_requested_model_its_own_way(
    make_service: MakeService, both: dict[str, Any], fake_openrouter: FakeOpenAI, client: aiohttp.ClientSession
) -> None:
    service = await make_service(
        **both,
        ollama_url=closed_port_url(),
        openrouter_models="llama3.2:latest=meta-llama/llama-3.2-3b-instruct",
    )
    _, frames = await post_chat(client, service, {**HELLO, "model": "llama3.2:latest"})
    assert frames[0].data == {
        "id": frames[0].data["id"],
        "model": "meta-llama/llama-3.2-3b-instruct",
        "provider": "openrouter",
    }
    assert fake_openrouter.requests[-1].body["model"] == "meta-llama/llama-3.2-3b-instruct"


async def test_models_lists_every_provider_each_tagged(
    make_service: MakeService, both: dict[str, Any], client: aiohttp.ClientSession
) -> None:
    service = await make_service(**both)
    async with client.get(service.url + "/api/models") as response:
        body = await response.json()
    assert response.status == 200
    assert [(m["name"], m["provider"]) for m in body["models"]] == [
        ("llama3.2:latest", "ollama"),
        ("qwen3:4b", "ollama"),
        ("openai/gpt-4o-mini", "openrouter"),
        ("meta-llama/llama-3.2-3b-instruct", "openrouter"),
    ]
    assert body["errors"] == []
    assert body["default"] == "llama3.2:latest"


async def test_models_with_one_provider_down_lists_the_others_and_says_why(
    make_service: MakeService, both: dict[str, Any], client: aiohttp.ClientSession
) -> None:
    service = await make_service(**both, ollama_url=closed_port_url())
    async with client.get(service.url + "/api/models") as response:
        body = await response.json()
    assert response.status == 200
    assert {m["provider"] for m in body["models"]} == {"openrouter"}
    [error] = body["errors"]
    assert error["provider"] == "ollama"
    assert "unreachable" in error["message"]
    assert body["default"] == "openai/gpt-4o-mini"  # what a request naming no model would get
