from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from sse.settings import Settings
from tests.fakes.ollama import FakeOllama
from tests.fakes.openai import FakeOpenAI
from tests.helpers import Service, start_service
from tests.redisserver import RedisServer, require_redis_server


@pytest.fixture
async def fake_ollama() -> AsyncIterator[FakeOllama]:
    fake = FakeOllama()
    await fake.start()
    yield fake
    await fake.close()


OPENROUTER_KEY = "sk-or-v1-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"


@pytest.fixture
async def fake_openrouter() -> AsyncIterator[FakeOpenAI]:
    """A fake OpenRouter that insists on ``OPENROUTER_KEY``."""
    fake = FakeOpenAI(api_key=OPENROUTER_KEY)
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
def openrouter(fake_openrouter: FakeOpenAI) -> dict[str, Any]:
    """Settings that point the ``openrouter`` provider at the fake."""
    return {
        "openrouter_base_url": fake_openrouter.url,
        "openrouter_api_key": OPENROUTER_KEY,
        "openrouter_model": "openai/gpt-4o-mini",
    }


@pytest.fixture
async def make_service(fake_ollama: FakeOllama) -> AsyncIterator[Callable[..., Awaitable[Service]]]:
    """Start the service against the fake Ollama, with settings overridden by keyword."""
    started: list[Service] = []

    async def make(**overrides: Any) -> Service:
        values: dict[str, Any] = {"provider": "ollama", "ollama_url": fake_ollama.url, "port": 0}
        values.update(overrides)
        service = await start_service(Settings(**values))
        started.append(service)
        return service

    yield make
    for service in started:
        await service.stop()


@pytest.fixture
async def service(make_service: Callable[..., Awaitable[Service]]) -> Service:
    return await make_service()


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def redis_server() -> AsyncIterator[RedisServer]:
    """A real redis-server on a free loopback port, without persistence."""
    require_redis_server()
    server = await RedisServer().start()
    yield server
    await server.stop()
