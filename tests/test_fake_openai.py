"""The fake OpenRouter itself: what the provider tests rely on it to send."""

from __future__ import annotations

import aiohttp
import pytest

from tests.conftest import OPENROUTER_KEY
from tests.fakes.openai import FIXTURES, FakeOpenAI, Script

TRANSCRIPTS = sorted(str(p.relative_to(FIXTURES)) for p in FIXTURES.glob("open*/*.sse"))
AUTH = {"Authorization": f"Bearer {OPENROUTER_KEY}"}


@pytest.mark.parametrize("name", TRANSCRIPTS)
@pytest.mark.parametrize("split", [None, 7])
async def test_transcripts_are_replayed_byte_for_byte(
    fake_openrouter: FakeOpenAI, client: aiohttp.ClientSession, name: str, split: int | None
) -> None:
    fake_openrouter.push(Script.transcript(name, split=split))
    async with client.post(fake_openrouter.url + "/chat/completions", json={}, headers=AUTH) as response:
        body = await response.read()
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/event-stream"
    assert body == (FIXTURES / name).read_bytes()


@pytest.mark.parametrize("name", ["openai/error_400_before_stream.http", "openrouter/error_before_stream.http"])
async def test_recorded_errors_are_replayed_with_their_status_and_body(
    fake_openrouter: FakeOpenAI, client: aiohttp.ClientSession, name: str
) -> None:
    recorded = (FIXTURES / name).read_bytes()
    fake_openrouter.push(Script.http(name))
    async with client.post(fake_openrouter.url + "/chat/completions", json={}, headers=AUTH) as response:
        body = await response.read()
    assert response.status == 400
    assert response.content_type == "application/json"
    assert body == recorded.partition(b"\r\n\r\n")[2]


async def test_a_request_without_the_key_gets_openrouters_401(
    fake_openrouter: FakeOpenAI, client: aiohttp.ClientSession
) -> None:
    async with client.post(fake_openrouter.url + "/chat/completions", json={}) as response:
        body = await response.json()
    assert response.status == 401
    assert body == {"error": {"message": "No cookie auth credentials found", "code": 401}}
