"""Odd answers from a model server, through the whole service: a wild Retry-After, an HTML page.

An upstream's ``Retry-After`` is passed on to our client as a header and in
the JSON body, so whatever the upstream sends (``inf``, ``1e999``, a date,
a word) becomes a small whole number of seconds, never a 500.  A page where
Ollama's NDJSON should be (a captive portal, a misrouted proxy, status 200)
is a 502 ``upstream_protocol`` before the stream, and the next provider
serves instead.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from sse.errors import MAX_RETRY_AFTER, retry_after_seconds
from sse.providers.http import parse_retry_after
from tests.fakes.ollama import FakeOllama, Line, Raw, Script, _chat_line, token_lines
from tests.fakes.openai import FakeOpenAI
from tests.fakes.openai import Raw as RouterRaw
from tests.fakes.openai import Script as RouterScript
from tests.helpers import Service, StreamRecords, post_chat, text_of

MakeService = Callable[..., Awaitable[Service]]
HELLO = {"messages": [{"role": "user", "content": "Say hello"}]}
ROUTER_ANSWER = "Hello from the fake router."
HTML_PAGE = b"<!doctype html>\n<html><head><title>Sign in to the hotel Wi-Fi</title></head>\n<body>...</body></html>\n"


# -- Retry-After


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # Not Retry-After's syntax: ignored, so the usual 1 s applies.
        ("inf", "1"),  # was a 500: int(inf) raises
        ("Infinity", "1"),
        ("1e999", "1"),
        ("1e300", "1"),  # was passed on as a 301-digit header
        # Whole seconds beyond the cap: capped.
        ("9" * 400, str(MAX_RETRY_AFTER)),
        ("7200", str(MAX_RETRY_AFTER)),
        ("nan", "1"),
        ("-5", "1"),
        ("soon", "1"),
        ("", "1"),
        ("30", "30"),
        ("2.5", "3"),
    ],
)
async def test_an_upstreams_retry_after_reaches_the_client_as_a_bounded_whole_number(
    service: Service, fake_ollama: FakeOllama, client: aiohttp.ClientSession, value: str, expected: str
) -> None:
    fake_ollama.push(Script(status=503, error="server busy", headers={"Retry-After": value}))
    response, body = await post_chat(client, service, HELLO)
    assert response.status == 503
    assert body["error"]["code"] == "upstream_busy"
    assert response.headers["Retry-After"] == expected
    assert body["error"]["retry_after"] == int(expected)


async def test_an_http_date_retry_after_is_the_seconds_until_then(
    service: Service, fake_ollama: FakeOllama, client: aiohttp.ClientSession
) -> None:
    in_two_minutes = email.utils.formatdate(time.time() + 120, usegmt=True)
    fake_ollama.push(Script(status=429, error="slow down", headers={"Retry-After": in_two_minutes}))
    response, body = await post_chat(client, service, HELLO)
    assert response.status == 429
    assert 100 <= int(response.headers["Retry-After"]) <= 121
    assert body["error"]["retry_after"] == int(response.headers["Retry-After"])


async def test_an_openai_compatible_upstreams_infinite_retry_after_is_bounded_too(
    make_service: MakeService,
    openrouter: dict[str, Any],
    fake_openrouter: FakeOpenAI,
    client: aiohttp.ClientSession,
) -> None:
    service = await make_service(provider="openrouter", **openrouter)
    fake_openrouter.push(
        RouterScript(
            status=429,
            body=b'{"error":{"message":"rate limited","code":429}}',
            content_type="application/json",
            headers={"Retry-After": "Infinity"},
        )
    )
    response, body = await post_chat(client, service, HELLO)
    assert response.status == 429
    assert response.headers["Retry-After"] == "1"
    assert body["error"]["retry_after"] == 1


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("Wed, 21 Oct 2015 07:28:00 GMT", 60.0),
        ("Wed, 21 Oct 2015 07:26:00 GMT", 0.0),  # in the past: at once
        ("Wed, 21 Oct 2015 07:27:00 -0000", 0.0),
        ("Wed, 21 Oct 2025 07:28:00 GMT", float(MAX_RETRY_AFTER)),
        ("Wed, 99 Oct 2015 07:28:00 GMT", None),
        ("12 monkeys", None),
        ("0x10", None),
        (" 42 ", 42.0),
        ("1" * 400, float(MAX_RETRY_AFTER)),
        ("inf", None),
        ("nan", None),
        ("1e3", None),
    ],
)
def test_retry_after_is_read_as_seconds_or_an_http_date(value: str, seconds: float | None) -> None:
    now = email.utils.parsedate_to_datetime("Wed, 21 Oct 2015 07:27:00 GMT").timestamp()
    assert parse_retry_after(value, now=now) == seconds


# -- an HTML page where Ollama's NDJSON should be


@pytest.mark.parametrize(
    "script",
    [
        Script([Raw(HTML_PAGE)], headers={"Content-Type": "text/html; charset=utf-8"}),
        # The same page declared as NDJSON (a proxy that keeps the type): its lines are all unreadable.
        Script([Raw(HTML_PAGE)]),
        Script([Raw(b"<html><body>Service Unavailable</body></html>")]),  # no newline at all
    ],
    ids=["text/html", "declared-ndjson", "one-line"],
)
async def test_an_html_page_from_ollama_is_a_502_upstream_protocol_before_the_stream(
    service: Service, fake_ollama: FakeOllama, client: aiohttp.ClientSession, script: Script
) -> None:
    fake_ollama.push(script)
    response, body = await post_chat(client, service, HELLO)
    assert response.status == 502
    assert response.content_type == "application/json"
    assert body["error"]["code"] == "upstream_protocol"
    assert "Ollama" in body["error"]["message"]


async def test_an_html_page_from_ollama_falls_back_to_the_next_provider(
    make_service: MakeService,
    openrouter: dict[str, Any],
    fake_ollama: FakeOllama,
    fake_openrouter: FakeOpenAI,
    client: aiohttp.ClientSession,
) -> None:
    service = await make_service(provider="ollama,openrouter", **openrouter)
    records = StreamRecords(service.app)
    fake_ollama.push(Script([Raw(HTML_PAGE)]))  # status 200, typed as NDJSON: only the lines tell
    response, frames = await post_chat(client, service, HELLO)
    assert response.status == 200
    assert frames[0].event == "meta"
    assert frames[0].data["provider"] == "openrouter"
    assert text_of(frames) == ROUTER_ANSWER
    assert frames[-1].event == "done"
    assert frames[-1].data["skipped_lines"] == 0  # Ollama's unreadable lines are not this answer's
    line = await records.next()
    [attempt] = line["attempts"]
    assert attempt.startswith("ollama: upstream_protocol:")


async def test_lines_skipped_before_the_first_token_are_still_counted_once_the_answer_starts(
    service: Service, fake_ollama: FakeOllama, client: aiohttp.ClientSession
) -> None:
    """Held back until the first event, not dropped: the done frame still reports them."""
    steps = token_lines(["Hello", " world"])
    fake_ollama.push(Script([Raw(b"<garbage>\n"), Raw(b'{"truncated":\n'), *steps]))
    response, frames = await post_chat(client, service, HELLO)
    assert response.status == 200
    assert text_of(frames) == "Hello world"
    assert frames[-1].event == "done"
    assert frames[-1].data["skipped_lines"] == 2


async def test_an_answer_of_only_an_empty_first_line_and_garbage_is_still_a_protocol_error(
    service: Service, fake_ollama: FakeOllama, client: aiohttp.ClientSession
) -> None:
    """A readable line without text is no event: what follows it decides."""
    fake_ollama.push(Script([Line(_chat_line("llama3.2:latest", "")), Raw(HTML_PAGE)]))
    response, body = await post_chat(client, service, HELLO)
    assert response.status == 502
    assert body["error"]["code"] == "upstream_protocol"


@pytest.mark.parametrize(
    ("seconds", "header"),
    [(float("inf"), MAX_RETRY_AFTER), (float("nan"), MAX_RETRY_AFTER), (1e300, MAX_RETRY_AFTER), (0.0, 1), (2.2, 3)],
)
def test_retry_after_seconds_is_a_small_whole_number_whatever_it_is_given(seconds: float, header: int) -> None:
    assert retry_after_seconds(seconds) == header


async def test_an_html_page_from_an_openai_compatible_provider_falls_back_too(
    make_service: MakeService,
    openrouter: dict[str, Any],
    fake_openrouter: FakeOpenAI,
    client: aiohttp.ClientSession,
) -> None:
    service = await make_service(provider="openrouter,ollama", **openrouter)
    fake_openrouter.push(RouterScript([RouterRaw(HTML_PAGE)], content_type="text/html"))
    response, frames = await post_chat(client, service, HELLO)
    assert response.status == 200
    assert frames[0].data["provider"] == "ollama"
    assert frames[-1].event == "done"


async def test_an_openai_compatible_stream_of_only_unreadable_data_falls_back_before_the_stream(
    make_service: MakeService,
    openrouter: dict[str, Any],
    fake_openrouter: FakeOpenAI,
    client: aiohttp.ClientSession,
) -> None:
    """Skipped lines are no first event, whichever provider sends them."""
    service = await make_service(provider="openrouter,ollama", **openrouter)
    records = StreamRecords(service.app)
    fake_openrouter.push(RouterScript([RouterRaw(b"data: <html>\n\n"), RouterRaw(b"data: {not json\n\n")]))
    response, frames = await post_chat(client, service, HELLO)
    assert response.status == 200
    assert frames[0].data["provider"] == "ollama"
    assert frames[-1].event == "done"
    assert frames[-1].data["skipped_lines"] == 0
    line = await records.next()
    [attempt] = line["attempts"]
    assert attempt.startswith("openrouter: upstream_disconnected:")
