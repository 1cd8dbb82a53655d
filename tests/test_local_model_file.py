"""Any GGUF chat model on the built-in runtime (``LLM_SSE_LOCAL_MODEL``), and clear refusals of wrong files.

The second model is a tiny one written for the test (``tests/tiny_gguf.py``)
with its own chat template: llama.cpp really loads it and really renders the
conversation with that template, which the number of prompt tokens shows
(every character of the rendered prompt is one token of its vocabulary).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from sse.providers import StartupError
from sse.providers.llamacpp import GgufError, locate_weights, read_gguf
from sse.providers.local import LocalProvider
from sse.settings import Settings
from sse.web.keys import SELECTION
from tests.conftest import NO_LIMITS
from tests.helpers import Service, read_frames, start_service
from tests.process import ServiceProcess
from tests.tiny_gguf import CONTEXT_LENGTH, TEMPLATE, rendered, write_tiny_gguf

pytestmark = pytest.mark.usefixtures("local_extra")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_gguf(tmp_path_factory.mktemp("models") / "tiny-chat.gguf")


@pytest.fixture
async def file_service(tiny_model: Path) -> AsyncIterator[Callable[..., Awaitable[Service]]]:
    started: list[Service] = []

    async def make(**overrides: Any) -> Service:
        values: dict[str, Any] = {"provider": "local", "local_model": str(tiny_model), "port": 0, **NO_LIMITS}
        service = await start_service(Settings(**{**values, **overrides}))
        started.append(service)
        return service

    yield make
    for service in started:
        await service.stop()


async def test_a_gguf_of_ones_own_answers_with_the_template_from_its_metadata(
    file_service: Callable[..., Awaitable[Service]], client: aiohttp.ClientSession
) -> None:
    service = await file_service()
    prompt = "hi there"
    body = {"prompt": prompt, "options": {"num_predict": 4, "temperature": 0}}
    async with client.post(service.url + "/api/chat", json=body) as response:
        assert response.status == 200
        frames = await read_frames(response)
    assert frames[0].data["model"] == "tiny-chat"
    assert frames[-1].event == "done"
    usage = frames[-1].data["usage"]
    # SmolLM2's template would make dozens of tokens of this; the file's own makes one per character.
    assert usage["prompt_tokens"] == len(rendered(prompt))
    assert 0 <= usage["completion_tokens"] <= 4


async def test_models_lists_the_file_by_name_with_its_context_and_no_demo_note(
    file_service: Callable[..., Awaitable[Service]], client: aiohttp.ClientSession
) -> None:
    service = await file_service()
    async with client.get(service.url + "/api/models") as response:
        body = await response.json()
    (model,) = body["models"]
    assert body["default"] == "tiny-chat"
    assert model == {
        "name": "tiny-chat",
        "provider": "local",
        "file": "tiny-chat.gguf",
        "family": "llama",
        "quantization_level": "F32",
        "context_length": CONTEXT_LENGTH,
    }


async def test_the_context_is_the_models_own_within_max_ctx(
    file_service: Callable[..., Awaitable[Service]], client: aiohttp.ClientSession
) -> None:
    service = await file_service(max_ctx=512)  # llama.cpp sizes contexts in steps of 256 tokens
    async with client.get(service.url + "/api/models") as response:
        (model,) = (await response.json())["models"]
    assert model["context_length"] == 512 < CONTEXT_LENGTH


async def test_auto_serves_the_named_file_without_asking_ollama(tiny_model: Path) -> None:
    settings = Settings.load(["--local-model", str(tiny_model), "--port", "0"], {"OLLAMA_URL": "http://x.invalid"})
    service = await start_service(settings)
    try:
        assert service.app[SELECTION] == "serving tiny-chat on the built-in runtime (--local-model)"
    finally:
        await service.stop()


def test_the_metadata_is_read_without_loading_the_model(tiny_model: Path) -> None:
    info = read_gguf(tiny_model)
    assert (info.architecture, info.context_length, info.chat_template) == ("llama", CONTEXT_LENGTH, TEMPLATE)
    assert info.name == "tiny test model"
    bundled = read_gguf(locate_weights())
    assert (bundled.architecture, bundled.context_length, bundled.quantization) == ("llama", 8192, "Q4_1")
    assert bundled.chat_template is not None
    assert "<|im_start|>" in bundled.chat_template


# -- files the runtime cannot serve


async def start_error(path: Path) -> str:
    provider = LocalProvider(model_path=path, setting="--local-model")
    with pytest.raises(StartupError) as caught:
        await provider.start()
    await provider.close()
    return str(caught.value)


async def test_a_file_that_is_not_a_gguf_is_refused_saying_so(tmp_path: Path) -> None:
    path = tmp_path / "model.gguf"
    path.write_text("<html>a download page, not a model</html>")
    assert await start_error(path) == (
        f"--local-model: {path} is not a GGUF file (it does not start with 'GGUF'); "
        "the built-in runtime reads llama.cpp's GGUF models, files ending in .gguf"
    )


async def test_a_model_without_a_chat_template_is_refused_saying_what_to_use(tmp_path: Path) -> None:
    path = write_tiny_gguf(tmp_path / "base.gguf", chat_template=None)
    message = await start_error(path)
    assert message.startswith(f"--local-model: {path} has no chat template in its metadata")
    assert "use the GGUF of an instruct or chat model" in message


async def test_a_truncated_gguf_is_refused_as_damaged(tmp_path: Path, tiny_model: Path) -> None:
    path = tmp_path / "cut.gguf"
    with tiny_model.open("rb") as whole, path.open("wb") as cut:
        cut.write(whole.read(300))
    message = await start_error(path)
    assert message == f"--local-model: {path} is a damaged GGUF file: its header ends early or is corrupt"


async def test_a_missing_file_or_a_folder_is_refused(tmp_path: Path) -> None:
    assert await start_error(tmp_path / "nope.gguf") == f"--local-model: {tmp_path / 'nope.gguf'} does not exist"
    assert await start_error(tmp_path) == f"--local-model: {tmp_path} is a folder, not a GGUF file"


def test_an_old_or_foreign_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "v1.gguf"
    path.write_bytes(b"GGUF" + (1).to_bytes(4, "little") + bytes(16))
    with pytest.raises(GgufError, match=r"GGUF version 1; llama\.cpp reads versions 2 and 3"):
        read_gguf(path)


async def test_a_bad_file_stops_the_start_with_one_sentence_naming_the_variable(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a model")
    process = ServiceProcess("--port", "0", env={"LLM_SSE_LOCAL_MODEL": str(path)})
    await process.start(wait_listening=False)
    assert await process.wait() == 1
    (line,) = [line for line in process.lines if line.get("msg") == "cannot start"]
    assert line["why"].startswith(f"LLM_SSE_LOCAL_MODEL: {path} is not a GGUF file")
