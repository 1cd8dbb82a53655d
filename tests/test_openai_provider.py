"""The openai provider kind against a fake OpenRouter on loopback, through the whole service.

The fake replays recorded transcripts byte for byte (tests/fixtures/openai,
tests/fixtures/openrouter) and scripted answers with OpenRouter's quirks:
keep-alive comments, the finish chunk sent twice, reasoning deltas, in-band
errors, error statuses with Retry-After, and hangs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import OPENROUTER_KEY
from tests.fakes.openai import DONE, Comment, Data, FakeOpenAI, Gate, Hang, Raw, Script, Sleep, chunk, chunks
from tests.helpers import Frame, Service, StreamRecords, iter_frames, logged, post_chat, text_of

MakeService = Callable[..., Awaitable[Service]]
HELLO = {"messages": [{"role": "user", "content": "Say hello"}]}


@pytest.fixture
async def router_service(make_service: MakeService, openrouter: dict[str, Any]) -> Service:
    """The service with OpenRouter (the fake) as its only provider."""
    return await make_service(provider="openrouter", **openrouter)


def kinds(frames: list[Frame]) -> list[str]:
    return [f.event for f in frames]


def assert_one_terminal(frames: list[Frame], terminal: str) -> None:
    assert frames[0].event == "meta"
    assert [f.event for f in frames if f.event in ("done", "error")] == [terminal]
    assert frames[-1].event == terminal


# -- recorded transcripts


async def test_openrouter_keepalives_and_double_finish_give_one_done(
    router_service: Service, fake_openrouter: FakeOpenAI, client: aiohttp.ClientSession
) -> None:
    fake_openrouter.push(Script.transcript("openrouter/chat_stream_with_comments.sse"))
    response, frames = await post_chat(client, router_service, HELLO)
    assert response.status == 200
    assert frames[0].data["provider"] == "openrouter"
    assert frames[0].data["model"] == "openai/gpt-4o-mini"
    assert text_of(frames) == "Hello!"
    assert_one_terminal(frames, "done")
    done = frames[-1].data
    assert done["finish_reason"] == "stop"
    assert done["usage"] == {"prompt_tokens": 21, "completion_tokens": 3}
    assert done["skipped_lines"] == 0


async def test_openai_usage_chunk_with_empty_choices_is_read(
    router_service: Service, fake_openrouter: FakeOpenAI, client: aiohttp.ClientSession
) -> None:
    fake_openrouter.push(Script.transcript("openai/chat_stream.sse"))
    _, frames = await post_chat(client, router_service, HELLO)
    assert text_of(frames) == "Hello!"
    assert_one_terminal(frames, "done")
    assert frames[-1].data["usage"] == {"prompt_tokens": 22, "completion_tokens": 2}
    assert frames[-1].data["finish_reason"] == "stop"


async def test_reasoning_deltas_become_thinking_frames_before_the_answer(
    router_service: Service, fake_openrouter: FakeOpenAI, client: aiohttp.ClientSession
) -> None:
    fake_openrouter.push(Script.transcript("openrouter/reasoning_stream.sse"))
    _, frames = await post_chat(client, router_service, HELLO)
    assert text_of(frames, "thinking") == "The user asks for 17×23."
    assert text_of(frames) == "17 × 23 = 391"
    content = [f.event for f in frames if f.event in ("thinking", "token")]
    assert content == ["thinking"] * content.count("thinking") + ["token"] * content.count("token")
    assert frames[-1].data["usage"] == {"prompt_tokens": 14, "completion_tokens": 41}


async def test_reasoning_content_field_is_thinking_too(
    router_service: Service, fake_openrouter: FakeOpenAI, client: aiohttp.ClientSession
) -> None:
    """vLLM, DeepSeek and llama.cpp's server name the field ``reasoning_content``."""
    thinking = {"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}}]}
    thinking["choices"][0]["delta"] = {"reasoning_content": "Hmm.", "content": None}
    fake_openrouter.push(Script([Data(thinking), *chunks(["Yes."], keepalives=0)]))
    _, frames = await post_chat(client, router_service, HELLO)
    assert text_of(frames, "thinking") == "Hmm."
    assert text_of(frames) == "Yes."


async def test_multibyte_text_split_at_every_byte_arrives_intact(
    router_service: Service, fake_openrouter: FakeOpenAI, client: aiohttp.ClientSession
) -> None:
    fake_openrouter.push(Script.transcript("openrouter/chat_stream_multibyte.sse", split=1))
    _, frames = await post_chat(client, router_service, HELLO)
    assert text_of(frames) == "It's sunny and 22°C in Paris."
    assert_one_terminal(frames, "done")
    assert frames[-1].data["usage"] == {"prompt_tokens": 899, "completion_tokens": 19}


@pytest.mark.parametrize(
    ("transcript", "call_id", "arguments"),
    [
        ("openrouter/tool_call_stream_3_comments.sse", "toolu_bdrk_01AVRkzbigpMbNJ3zjnuQ6ZE", '{"city": "Paris"}'),
        ("openai/chat_stream_tool_call.sse", "call_5wBV98AvGPwOyC6a2HtKh85w", '{"city":"Paris"}'),
    ],
)
async def test_tool_call_fragments_become_one_tool_call_frame(
    router_service: Service,
    fake_openrouter: FakeOpenAI,
    client: aiohttp.ClientSession,
    transcript: str,
    call_id: str,
    arguments: str,
) -> None:
    fake_openrouter.push(Script.transcript(transcript))
    _, frames = await post_chat(client, router_service, HELLO)
    assert kinds(frames) == ["meta", "tool_call", "done"]
    assert frames[1].data == {"id": call_id, "name": "get_weather", "arguments": arguments}
    # OpenAI's forced tool_choice finishes with "stop": a client must still know to run the tool.
    assert frames[-1].data["finish_reason"] == "tool_calls"
    assert frames[-1].data["skipped_lines"] == 0


async def test_tokens_of_one_network_read_share_one_frame(
    router_service: Service, fake_openrouter: FakeOpenAI, client: aiohttp.ClientSession
) -> None:
    fake_openrouter.push(Script.transcript("openrouter/chat_stream_with_comments.sse", whole=True))
    _, frames = await post_chat(client, router_service, HELLO)
    assert [f.data["text"] for f in frames if f.event == "token"] == ["Hello!"]


# -- errors in the stream


@pytest.mark.parametrize(
    ("transcript", "text", "message"),
    [
        ("openrouter/midstream_error.sse", "Once upon a time", "Provider disconnected unexpectedly"),
        (
            "openai/midstream_error.sse",
            'The question "',
            "The server had an error while processing your request. Sorry about that!",
        ),
    ],
)
async def test_midstream_error_after_tokens_is_an_error_frame(
    router_service: Service,
    fake_openrouter: FakeOpenAI,
    client: aiohttp.ClientSession,
    transcript: str,
    text: str,
    message: str,
) -> None:
    fake_openrouter.push(Script.transcript(transcript))
    response, frames = await post_chat(client, router_service, HELLO)
    assert response.status == 200
    assert text_of(frames) == text
    assert_one_terminal(frames, "error")
    assert frames[-1].data == {"code": "upstream_error", "message": message}


async def test_error_chunk_before_any_token_is_an_http_status(
    router_service: Service, fake_openrouter: FakeOpenAI, client: aiohttp.ClientSession
) -> None:
    """Nothing reached the client yet, so it gets a status (and fallback could apply)."""
    error = {"code": 502, "message": "Provider returned error"}
    fake_openrouter.push(Script([Comment(), Data(chunk(error=error, finish_reason="error"))]))
    response, body = await post_chat(client, router_service, HELLO)
    assert response.status == 502
    assert body["error"] == {"code": "upstream_error", "message": "Provider returned error"}


@pytest.mark.parametrize(
    ("script", "status", "code", "message"),
    [
        (Script.http("openai/error_400_before_stream.http"), 400, "upstream_rejected", "Input tokens exceed"),
        (Script.http("openrouter/error_before_stream.http"), 400, "upstream_rejected", "Invalid model specified"),
        (Script.error(404, "No endpoints found for x/y."), 404, "model_not_found", "No endpoints found"),
        (Script.error(500, "Internal Server Error"), 502, "upstream_error", "Internal Server Error"),
        (Script.error(502, "Provider returned error"), 502, "upstream_error", "Provider returned error"),
        (Script.error(503, "No instances available"), 503, "upstream_busy", "No instances available"),
    ],
)
async def test_error_status_before_the_stream_is_the_matching_json_error(
    router_service: Service,
    fake_openrouter: FakeOpenAI,
    client: aiohttp.ClientSession,
    script: Script,
    status: int,
    code: str,
    message: str,
) -> None:
    fake_openrouter.push(script)
    response, body = await post_chat(client, router_service, HELLO)
    assert response.status == status
    assert body["error"]["code"] == code
    assert message in body["error"]["message"]


async def test_429_keeps_the_upstream_retry_after(
    router_service: Service, fake_openrouter: FakeOpenAI, client: aiohttp.ClientSession
) -> None:
    fake_openrouter.push(Script.error(429, "Rate limit exceeded: free-models-per-min", headers={"Retry-After": "7"}))
    response, body = await post_chat(client, router_service, HELLO)
    assert response.status == 429
    assert response.headers["Retry-After"] == "7"
    assert body["error"] == {
        "code": "upstream_rate_limited",
        "message": "Rate limit exceeded: free-models-per-min",
        "retry_after": 7,
    }


async def test_refused_key_is_a_502_that_never_shows_the_key(
    make_service: MakeService,
    openrouter: dict[str, Any],
    fake_openrouter: FakeOpenAI,
    client: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    wrong = "sk-or-v1-this-key-is-wrong-and-secret-0000000000000000000000000000"
    service = await make_service(provider="openrouter", **{**openrouter, "openrouter_api_key": wrong})
    with caplog.at_level(logging.DEBUG):
        response, body = await post_chat(client, service, HELLO)
    assert response.status == 502
    assert body["error"]["code"] == "upstream_auth"
    assert "openrouter" in body["error"]["message"]
    assert "credentials" in body["error"]["message"]
    assert fake_openrouter.requests[-1].headers["Authorization"] == f"Bearer {wrong}"
    assert wrong not in logged(caplog)
    assert wrong not in str(body)
    assert "No cookie auth credentials found" in logged(caplog)  # the upstream's own words are logged


async def test_upstream_message_quoting_the_key_is_redacted(
    router_service: Service, fake_openrouter: FakeOpenAI, client: aiohttp.ClientSession
) -> None:
    fake_openrouter.push(Script.error(400, f"Malformed request from key {OPENROUTER_KEY}"))
    _, body = await post_chat(client, router_service, HELLO)
    assert OPENROUTER_KEY not in body["error"]["message"]
    assert "[redacted]" in body["error"]["message"]


async def test_json_answer_instead_of_a_stream_is_a_protocol_error(
    router_service: Service, fake_openrouter: FakeOpenAI, client: aiohttp.ClientSession
) -> None:
    fake_openrouter.push(Script([Raw(b'{"id":"x","choices":[]}')], content_type="application/json"))
    response, body = await post_chat(client, router_service, HELLO)
    assert response.status == 502
    assert body["error"]["code"] == "upstream_protocol"


async def test_unparseable_data_is_skipped_and_counted(
    router_service: Service, fake_openrouter: FakeOpenAI, client: aiohttp.ClientSession
) -> None:
    fake_openrouter.push(Script([Data("{not json"), *chunks(["Hi"], keepalives=0)]))
    _, frames = await post_chat(client, router_service, HELLO)
    assert text_of(frames) == "Hi"
    assert frames[-1].data["skipped_lines"] == 1


async def test_oversized_event_is_refused_not_buffered(
    make_service: MakeService, openrouter: dict[str, Any], fake_openrouter: FakeOpenAI, client: aiohttp.ClientSession
) -> None:
    service = await make_service(provider="openrouter", max_line_bytes=1024, **openrouter)
    fake_openrouter.push(Script([Raw(b"data: " + b"x" * 4096)]))
    response, body = await post_chat(client, service, HELLO)
    assert response.status == 502
    assert body["error"]["code"] == "upstream_protocol"


async def test_body_ending_after_finish_without_done_marker_is_done(
    router_service: Service, fake_openrouter: FakeOpenAI, client: aiohttp.ClientSession
) -> None:
    fake_openrouter.push(Script([Data(chunk(content="Hi")), Data(chunk(finish_reason="length"))]))
    _, frames = await post_chat(client, router_service, HELLO)
    assert text_of(frames) == "Hi"
    assert_one_terminal(frames, "done")
    assert frames[-1].data["finish_reason"] == "length"


async def test_body_ending_before_finish_is_a_disconnect_error(
    router_service: Service, fake_openrouter: FakeOpenAI, client: aiohttp.ClientSession
) -> None:
    fake_openrouter.push(Script([Data(chunk(content="Hi"))]))
    _, frames = await post_chat(client, router_service, HELLO)
    assert text_of(frames) == "Hi"
    assert_one_terminal(frames, "error")
    assert frames[-1].data["code"] == "upstream_disconnected"


# -- hangs and Stop


async def test_keepalive_comments_do_not_count_as_a_first_token(
    make_service: MakeService, openrouter: dict[str, Any], fake_openrouter: FakeOpenAI, client: aiohttp.ClientSession
) -> None:
    service = await make_service(provider="openrouter", first_token_timeout=0.5, **openrouter)
    keepalives: list[Any] = []
    for _ in range(40):  # 2 s of keep-alives, well past the 0.5 s bound
        keepalives += [Comment(), Sleep(0.05)]
    fake_openrouter.push(Script([*keepalives, Hang()]))
    response, body = await post_chat(client, service, HELLO)
    assert response.status == 504
    assert body["error"]["code"] == "upstream_timeout"
    async with asyncio.timeout(5):
        await fake_openrouter.requests[-1].disconnected.wait()


async def test_hang_after_tokens_is_an_idle_timeout_error(
    make_service: MakeService, openrouter: dict[str, Any], fake_openrouter: FakeOpenAI, client: aiohttp.ClientSession
) -> None:
    service = await make_service(provider="openrouter", idle_timeout=0.5, **openrouter)
    fake_openrouter.push(Script([Comment(), Data(chunk(content="Once")), Hang()]))
    _, frames = await post_chat(client, service, HELLO)
    assert text_of(frames) == "Once"
    assert_one_terminal(frames, "error")
    assert frames[-1].data["code"] == "upstream_timeout"
    async with asyncio.timeout(5):
        await fake_openrouter.requests[-1].disconnected.wait()


async def test_stop_closes_the_upstream_connection_at_once(
    router_service: Service, fake_openrouter: FakeOpenAI, client: aiohttp.ClientSession
) -> None:
    never = asyncio.Event()  # the upstream stays silent after the first token
    fake_openrouter.push(Script([Comment(), Data(chunk(content="Once")), Gate(never)]))
    records = StreamRecords(router_service.app)
    response = await client.post(router_service.url + "/api/chat", json=HELLO)
    async for frame in iter_frames(response):
        if frame.event == "token":
            break
    response.close()  # Stop
    async with asyncio.timeout(5):
        await fake_openrouter.requests[-1].disconnected.wait()
    assert (await records.next())["outcome"] == "cancelled"


async def test_stop_before_the_first_token_closes_the_upstream_too(
    make_service: MakeService, openrouter: dict[str, Any], fake_openrouter: FakeOpenAI, client: aiohttp.ClientSession
) -> None:
    """While OpenRouter sends only keep-alives (the model is queued or loading)."""
    service = await make_service(provider="openrouter", heartbeat=0.1, **openrouter)
    never = asyncio.Event()
    fake_openrouter.push(Script([Comment(), Gate(never)]))
    response = await client.post(service.url + "/api/chat", json=HELLO)  # headers come with the first ping
    await fake_openrouter.request_arrived.wait()
    response.close()  # Stop
    async with asyncio.timeout(5):
        await fake_openrouter.requests[-1].disconnected.wait()


async def test_html_page_instead_of_a_stream_is_a_protocol_error_that_names_no_address(
    router_service: Service, fake_openrouter: FakeOpenAI, client: aiohttp.ClientSession
) -> None:
    """What a wrong base URL often gets: some web page, status 200.  The URL is the operator's to see, in the log."""
    fake_openrouter.push(Script([Raw(b"<!doctype html><title>Welcome</title>")], content_type="text/html"))
    records = StreamRecords(router_service.app)
    response, body = await post_chat(client, router_service, HELLO)
    assert response.status == 502
    assert body["error"]["code"] == "upstream_protocol"
    assert "text/html, not an event stream" in body["error"]["message"]
    assert "127.0.0.1" not in body["error"]["message"]
    [attempt] = (await records.next())["attempts"]
    assert f"upstream: {fake_openrouter.url}" in attempt


# -- what is sent


async def test_request_carries_stream_options_translated_options_and_headers(
    make_service: MakeService, openrouter: dict[str, Any], fake_openrouter: FakeOpenAI, client: aiohttp.ClientSession
) -> None:
    service = await make_service(
        provider="openrouter",
        openrouter_models="llama3.2=meta-llama/llama-3.2-3b-instruct",
        openrouter_headers='{"HTTP-Referer": "https://chat.example.com", "X-Title": "Example, Chat"}',
        **openrouter,
    )
    body = {
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        "model": "llama3.2",
        "options": {"temperature": 0.2, "num_predict": 64, "top_k": 40, "repeat_penalty": 1.1, "num_ctx": 4096},
        "think": "high",
    }
    response, frames = await post_chat(client, service, body)
    assert response.status == 200
    assert frames[0].data["model"] == "meta-llama/llama-3.2-3b-instruct"
    seen = fake_openrouter.requests[-1]
    assert seen.body == {
        "model": "meta-llama/llama-3.2-3b-instruct",
        "messages": body["messages"],
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.2,
        "max_tokens": 64,
        "top_k": 40,
        "repetition_penalty": 1.1,
        "reasoning": {"effort": "high"},
    }
    assert seen.headers["Authorization"] == f"Bearer {OPENROUTER_KEY}"
    assert seen.headers["HTTP-Referer"] == "https://chat.example.com"
    assert seen.headers["X-Title"] == "Example, Chat"
    assert seen.headers["Accept"] == "text/event-stream"
    async with client.get(service.url + "/api/models") as listing:
        assert (await listing.json())["errors"] == []  # the fake refuses a request without the key
    assert fake_openrouter.model_requests == 1


async def test_bare_prompt_is_sent_as_one_user_message(
    router_service: Service, fake_openrouter: FakeOpenAI, client: aiohttp.ClientSession
) -> None:
    await post_chat(client, router_service, {"prompt": "Why is the sky blue?", "think": False})
    seen = fake_openrouter.requests[-1].body
    assert seen["messages"] == [{"role": "user", "content": "Why is the sky blue?"}]
    assert seen["reasoning"] == {"enabled": False}


async def test_key_is_read_from_its_file(
    make_service: MakeService,
    openrouter: dict[str, Any],
    fake_openrouter: FakeOpenAI,
    client: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    key_file = tmp_path / "openrouter.key"
    key_file.write_text(OPENROUTER_KEY + "\n")
    settings = {**openrouter, "openrouter_api_key": "", "openrouter_api_key_file": str(key_file)}
    service = await make_service(provider="openrouter", **settings)
    response, frames = await post_chat(client, service, HELLO)
    assert response.status == 200
    assert text_of(frames) == "Hello from the fake router."


async def test_models_are_listed_and_tagged_with_their_provider(
    router_service: Service, fake_openrouter: FakeOpenAI, client: aiohttp.ClientSession
) -> None:
    async with client.get(router_service.url + "/api/models") as response:
        body = await response.json()
    assert response.status == 200
    assert body["models"] == [
        {"name": "openai/gpt-4o-mini", "provider": "openrouter", "context_length": 128000},
        {"name": "meta-llama/llama-3.2-3b-instruct", "provider": "openrouter", "context_length": 128000},
    ]
    assert body["errors"] == []


async def test_done_marker_alone_after_comments_is_done(
    router_service: Service, fake_openrouter: FakeOpenAI, client: aiohttp.ClientSession
) -> None:
    fake_openrouter.push(Script([Comment(), Comment(), DONE]))
    _, frames = await post_chat(client, router_service, HELLO)
    assert kinds(frames) == ["meta", "done"]
