"""Start-up: a configuration that cannot work fails at once with a message that says why."""

from __future__ import annotations

import socket
import sys

import pytest

from sse.cli import event_loop
from sse.settings import SettingsError
from tests.process import ServiceProcess


async def test_an_unknown_provider_exits_1_naming_the_known_ones():
    process = ServiceProcess("--provider", "ollamma", "--port", "0")
    await process.start(wait_listening=False)
    assert await process.wait() == 1
    assert any("unknown provider 'ollamma'" in text for text in process.stderr_text)


async def test_a_port_in_use_exits_1_with_a_message():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = ServiceProcess("--provider", "ollama", "--port", str(port))
        await process.start(wait_listening=False)
        assert await process.wait() == 1
    assert any(f"cannot listen on 127.0.0.1:{port}" in text for text in process.stderr_text)


async def test_an_explicit_ollama_provider_starts_even_if_ollama_is_down(client):
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        dead = free.getsockname()[1]
    process = ServiceProcess("--provider", "ollama", "--ollama-url", f"http://127.0.0.1:{dead}", "--port", "0")
    await process.start()
    try:
        async with client.get(process.url + "/readyz") as response:
            assert response.status == 503
            body = await response.json()
        assert body["providers"][0]["ready"] is False
    finally:
        process.signal()
        assert await process.wait() == 0


@pytest.mark.parametrize("choice", ["uvloop", "asyncio"])
async def test_the_event_loop_setting_chooses_the_loop_the_service_runs_on(choice):
    process = ServiceProcess("--provider", "ollama", "--port", "0", "--event-loop", choice)
    await process.start()
    try:
        listening = await process.wait_for_line(lambda line: line.get("msg") == "listening")
        assert listening["event_loop"] == choice
    finally:
        process.signal()
        assert await process.wait() == 0


async def test_an_unknown_event_loop_exits_2_naming_the_choices():
    process = ServiceProcess("--provider", "ollama", "--port", "0", "--event-loop", "trio")
    await process.start(wait_listening=False)
    assert await process.wait() == 2
    assert any("must be one of auto, uvloop, asyncio" in text for text in process.stderr_text)


def test_auto_falls_back_to_asyncio_and_uvloop_fails_clearly_without_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "uvloop", None)  # what an environment without uvloop sees
    assert event_loop("auto") is None
    assert event_loop("asyncio") is None
    with pytest.raises(SettingsError, match=r"uvloop is not installed: pip install 'llm-sse\[fast\]'"):
        event_loop("uvloop")
