"""HTTP-level oddities the fuzzer found: each gets our JSON error, never a 500 or aiohttp's plain text."""

from __future__ import annotations

import gzip
import json
import zlib

import pytest

from tests.helpers import read_frames

CHAT = {"messages": [{"role": "user", "content": "hi"}]}


async def error_of(response) -> dict:
    assert response.headers["Content-Type"].startswith("application/json")
    return (await response.json())["error"]


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        ("gzip", gzip.compress(json.dumps(CHAT).encode())),
        ("deflate", zlib.compress(json.dumps(CHAT).encode())),
        ("gzip", b"{}"),  # not gzip at all: was a 500 (RequestPayloadError) or aiohttp's plain-text 400
        ("br", b"\x00\x01"),
    ],
)
async def test_a_compressed_body_is_refused_with_a_json_415(service, client, fake_ollama, encoding, body):
    headers = {"Content-Type": "application/json", "Content-Encoding": encoding}
    async with client.post(service.url + "/api/chat", data=body, headers=headers) as response:
        assert response.status == 415
        error = await error_of(response)
    assert (error["code"], error["field"]) == ("unsupported_media_type", "Content-Encoding")
    assert not fake_ollama.requests


async def test_content_encoding_identity_is_fine(service, client):
    headers = {"Content-Encoding": "identity"}
    async with client.post(service.url + "/api/chat", json=CHAT, headers=headers) as response:
        assert (await read_frames(response))[-1].event == "done"


@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/api/chat"), ("GET", "/healthz"), ("POST", "/api/models"), ("PUT", "/api/nope")]
)
async def test_an_unknown_expectation_gets_a_json_417_on_any_path(service, client, method, path):
    async with client.request(method, service.url + path, headers={"Expect": "gzip"}) as response:
        assert response.status == 417
        assert (await error_of(response))["code"] == "expectation_failed"


async def test_expect_100_continue_still_works(service, client):
    async with client.post(service.url + "/api/chat", json=CHAT, expect100=True) as response:
        assert response.status == 200
        assert (await read_frames(response))[-1].event == "done"


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [("GET", "/api/chat", {"POST", "OPTIONS"}), ("DELETE", "/api/models", {"GET", "HEAD", "OPTIONS"})],
)
async def test_a_wrong_method_is_a_405_naming_the_allowed_ones(service, client, method, path, allow):
    async with client.request(method, service.url + path) as response:
        assert response.status == 405
        assert {m.strip() for m in response.headers["Allow"].split(",")} == allow
        assert (await error_of(response))["code"] == "method_not_allowed"


@pytest.mark.parametrize("path", ["/healthz", "/openapi.json", "/api/models"])
async def test_head_is_answered_where_get_is(service, client, path):
    async with client.head(service.url + path) as response:
        assert response.status == 200
