"""Start-up: a configuration that cannot work fails at once with a message that says why."""

from __future__ import annotations

import socket

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
