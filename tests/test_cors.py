"""CORS: an allowlist of origins, preflights, the event stream's headers, never credentials."""

from __future__ import annotations

import pytest

from sse.cors import CorsPolicy, normalize_origin
from sse.settings import Settings, SettingsError
from tests.helpers import read_frames
from tests.test_limits import CHAT, hold_stream

ALLOWED = "https://chat.example.com"
OTHER = "https://evil.example.net"


@pytest.mark.parametrize(
    ("raw", "origin"),
    [
        ("https://Chat.Example.com/", "https://chat.example.com"),
        ("https://chat.example.com:443", "https://chat.example.com"),
        ("http://localhost:5173", "http://localhost:5173"),
        ("http://[::1]:8080", "http://[::1]:8080"),
    ],
)
def test_origins_are_normalised(raw, origin):
    assert normalize_origin(raw) == origin


@pytest.mark.parametrize("bad", ["chat.example.com", "null", "ftp://x.example", "https://x.example/path", "https://"])
def test_a_bad_origin_fails_at_start_naming_the_setting(bad):
    with pytest.raises(SettingsError, match="LLM_SSE_CORS_ORIGINS"):
        Settings(cors_origins=bad)


def test_an_origin_is_matched_exactly_not_by_prefix_or_suffix():
    policy = CorsPolicy([ALLOWED])
    assert policy.allows("https://chat.example.com")
    assert policy.allows("https://chat.example.com:443")
    for origin in ("https://chat.example.com.evil.net", "http://chat.example.com", "https://evilchat.example.com"):
        assert not policy.allows(origin), origin
    assert not policy.allows("null")
    assert not policy.allows(None)


@pytest.fixture
async def service(make_service):
    return await make_service(cors_origins=f"{ALLOWED}, http://localhost:5173")


async def test_a_preflight_from_an_allowed_origin_says_what_may_be_sent(service, client):
    async with client.options(
        service.url + "/api/chat",
        headers={
            "Origin": ALLOWED,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    ) as response:
        assert response.status == 204
        headers = response.headers
    assert headers["Access-Control-Allow-Origin"] == ALLOWED
    assert headers["Access-Control-Allow-Methods"] == "POST, OPTIONS"
    allowed = {h.strip().lower() for h in headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type"} <= allowed
    assert headers["Access-Control-Max-Age"] == "600"
    assert headers["Vary"] == "Origin"
    assert "Access-Control-Allow-Credentials" not in headers


async def test_a_preflight_for_models_allows_get(service, client):
    async with client.options(service.url + "/api/models", headers={"Origin": ALLOWED}) as response:
        assert response.status == 204
        assert response.headers["Access-Control-Allow-Methods"] == "GET, OPTIONS"


async def test_a_preflight_from_another_origin_is_a_403_without_cors_headers(service, client):
    async with client.options(
        service.url + "/api/chat", headers={"Origin": OTHER, "Access-Control-Request-Method": "POST"}
    ) as response:
        assert response.status == 403
        assert "Access-Control-Allow-Origin" not in response.headers
        assert (await response.json())["error"]["code"] == "origin_not_allowed"


async def test_options_without_an_origin_is_a_plain_allow_answer(service, client):
    async with client.options(service.url + "/api/chat") as response:
        assert response.status == 204
        assert response.headers["Allow"] == "POST, OPTIONS"


async def test_the_event_stream_carries_the_cors_headers(service, client):
    async with client.post(service.url + "/api/chat", json=CHAT, headers={"Origin": ALLOWED}) as response:
        assert response.headers["Content-Type"] == "text/event-stream; charset=utf-8"
        assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
        assert response.headers["Vary"] == "Origin"
        assert "Retry-After" in response.headers["Access-Control-Expose-Headers"]
        assert "Access-Control-Allow-Credentials" not in response.headers
        frames = await read_frames(response)
    assert frames[-1].event == "done"


async def test_another_origin_gets_its_answer_without_cors_headers(service, client):
    async with client.post(service.url + "/api/chat", json=CHAT, headers={"Origin": OTHER}) as response:
        assert response.status == 200
        assert "Access-Control-Allow-Origin" not in response.headers
        assert response.headers["Vary"] == "Origin"  # caches must still keep origins apart
        await response.read()


async def test_errors_carry_the_cors_headers_so_the_page_can_read_retry_after(make_service, client, fake_ollama):
    service = await make_service(cors_origins=ALLOWED, max_streams_per_client=1)
    held, gate = await hold_stream(client, service.url, fake_ollama, {"Origin": ALLOWED})
    async with client.post(service.url + "/api/chat", json=CHAT, headers={"Origin": ALLOWED}) as response:
        assert response.status == 429
        assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
        assert "Retry-After" in response.headers["Access-Control-Expose-Headers"]
    gate.set()
    await held.read()


async def test_models_answers_an_allowed_origin(service, client):
    async with client.get(service.url + "/api/models", headers={"Origin": "http://localhost:5173"}) as response:
        assert response.status == 200
        assert response.headers["Access-Control-Allow-Origin"] == "http://localhost:5173"


async def test_health_checks_carry_no_cors_headers(service, client):
    async with client.get(service.url + "/healthz", headers={"Origin": ALLOWED}) as response:
        assert "Access-Control-Allow-Origin" not in response.headers


async def test_the_wildcard_allows_any_origin_and_never_credentials(make_service, client):
    service = await make_service(cors_origins="*")
    async with client.post(service.url + "/api/chat", json=CHAT, headers={"Origin": OTHER}) as response:
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert "Access-Control-Allow-Credentials" not in response.headers
        await response.read()


async def test_without_an_allowlist_no_cors_headers_are_sent_and_preflights_fail(make_service, client):
    service = await make_service()
    async with client.post(service.url + "/api/chat", json=CHAT, headers={"Origin": ALLOWED}) as response:
        assert not [h for h in response.headers if h.lower().startswith("access-control-")]
        assert "Vary" not in response.headers
        await response.read()
    async with client.options(service.url + "/api/chat", headers={"Origin": ALLOWED}) as response:
        assert response.status == 403
