"""Regression tests for the relay's timers, through the service and the fake Ollama."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import aiohttp

from tests.fakes.ollama import FakeOllama, Hang, Line, Script, _chat_line
from tests.helpers import Service, post_chat, text_of

MakeService = Callable[..., Awaitable[Service]]
HELLO = {"messages": [{"role": "user", "content": "Say hello"}]}


async def test_idle_timeout_shorter_than_the_heartbeat_is_honoured(
    make_service: MakeService, fake_ollama: FakeOllama, client: aiohttp.ClientSession
) -> None:
    """The watchdog used to sleep until its next heartbeat before the first token
    arrived, so the idle timeout started only then: up to ``heartbeat`` seconds late."""
    service = await make_service(idle_timeout=0.5, heartbeat=60)
    fake_ollama.push(Script([Line(_chat_line("llama3.2:latest", "Once")), Hang()]))
    async with asyncio.timeout(20):  # far below the 60 s heartbeat, far above the 0.5 s bound
        _, frames = await post_chat(client, service, HELLO)
    assert text_of(frames) == "Once"
    assert frames[-1].event == "error"
    assert frames[-1].data["code"] == "upstream_timeout"
    assert frames[-1].data["message"] == "ollama sent nothing for 0.5 s"
