"""Resumable streams in real Chromium: the page survives a network drop; a native EventSource reconnects.

The browser reaches the service through a TCP relay (tests/fakes/tcp.py) so a
test can cut the connection mid-answer: Chromium's offline emulation
(``context.set_offline``) fails new requests but leaves an established
loopback stream flowing, so it alone cannot drop one.  The page test uses
both: the relay cuts the stream, and offline keeps the reconnection attempts
failing until the test has seen the page say so.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import aiohttp
import pytest
from playwright.async_api import Browser, expect

from tests.browser.conftest import ChatPage, new_chat_page
from tests.fakes.ollama import FakeOllama, Hang, Script, token_lines
from tests.fakes.tcp import TcpRelay
from tests.helpers import Service, StreamRecords, iter_frames
from tests.resumable import DISCONNECT_WAIT, WORDS, held_script


@pytest.fixture
async def relay(service: Service) -> AsyncIterator[TcpRelay]:
    """The service behind a relay that can cut every connection at once."""
    parts = urlsplit(service.url)
    relay = TcpRelay(parts.hostname or "127.0.0.1", parts.port or 80)
    await relay.start()
    yield relay
    await relay.close()


@pytest.fixture
async def relayed_page(
    browser: Browser, service: Service, relay: TcpRelay, fake_ollama: FakeOllama
) -> AsyncIterator[ChatPage]:
    chat = await new_chat_page(browser, dataclasses.replace(service, url=relay.url), fake_ollama)
    await chat.open()
    yield chat
    await chat.check_clean()
    await chat.page.context.close()


async def test_the_page_survives_a_network_drop_and_shows_the_whole_answer_once(
    relayed_page: ChatPage, relay: TcpRelay, fake_ollama: FakeOllama
) -> None:
    chat = relayed_page
    before, during = asyncio.Event(), asyncio.Event()
    fake_ollama.push(held_script(WORDS, (10, before), (20, during)))
    await chat.ask("A long answer, please")
    answer = chat.answer()
    await expect(chat.answer_text()).to_have_text(re.compile(r"w9$"))

    await chat.page.context.set_offline(True)
    assert relay.cut() >= 1
    await expect(answer.locator(".turn-status")).to_have_text("Reconnecting…")
    await expect(answer).to_have_class(re.compile(r"\breconnecting\b"))
    await expect(chat.stop_button).to_be_visible()
    before.set()  # the answer goes on while the page is cut off
    assert not fake_ollama.requests[-1].disconnected.is_set()

    await chat.page.context.set_offline(False)
    await expect(chat.answer_text()).to_have_text(re.compile(r"w19$"))
    await expect(answer).not_to_have_class(re.compile(r"\breconnecting\b"))
    during.set()
    await chat.finished()
    await expect(chat.answer_text()).to_have_text("".join(WORDS).strip())
    # The answer joins the history once, whole.
    fake_ollama.push(Script(token_lines(["Sure."])))
    await chat.ask("Thanks")
    await chat.finished()
    assert fake_ollama.requests[-1].body["messages"][1] == {"role": "assistant", "content": "".join(WORDS)}


async def test_stop_cancels_the_resumable_stream_on_the_server(
    relayed_page: ChatPage, service: Service, fake_ollama: FakeOllama
) -> None:
    records = StreamRecords(service.app)
    fake_ollama.push(Script([*token_lines(["Partial"])[:1], Hang()]))
    await relayed_page.ask("Tell me a long story")
    await expect(relayed_page.answer_text()).to_have_text("Partial")
    await relayed_page.stop_button.click()
    # With a 60 s grace window, only the cancel can have closed the upstream this soon.
    await asyncio.wait_for(fake_ollama.requests[-1].disconnected.wait(), DISCONNECT_WAIT)
    record = await records.next()
    assert (record["outcome"], record["resumable"]) == ("cancelled", True)
    await expect(relayed_page.answer().locator(".turn-status")).to_have_text("Stopped.")


async def test_a_native_eventsource_reconnects_by_itself_and_misses_nothing(
    browser: Browser,
    service: Service,
    relay: TcpRelay,
    fake_ollama: FakeOllama,
    client: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    before, during = asyncio.Event(), asyncio.Event()
    fake_ollama.push(held_script(WORDS, (10, before), (20, during)))
    # Started by another client, which leaves after meta: the stream goes on without it.
    response = await client.post(
        service.url + "/api/chat", json={"messages": [{"role": "user", "content": "go"}], "resumable": True}
    )
    meta = (await anext(iter_frames(response))).data
    response.close()

    context = await browser.new_context()
    try:
        page = await context.new_page()
        await page.goto(relay.url + "/")
        with caplog.at_level(logging.INFO, logger="llm_sse.follower"):
            await page.evaluate(
                """url => {
                    window.__frames = []; window.__opens = 0; window.__ended = false;
                    const source = new EventSource(url);
                    source.onopen = () => { window.__opens += 1; };
                    for (const type of ["meta", "token", "done"]) {
                        source.addEventListener(type, (event) => {
                            window.__frames.push([type, event.lastEventId, JSON.parse(event.data).text ?? ""]);
                            if (type === "done") { source.close(); window.__ended = true; }
                        });
                    }
                }""",
                f"{meta['resume']['url']}?token={meta['resume']['token']}",
            )
            await page.wait_for_function("() => window.__frames.some((f) => f[2].endsWith('w9'))")
            assert relay.cut() >= 1
            before.set()
            # EventSource waits the stream's retry: (1 s), then reconnects with Last-Event-ID.
            await page.wait_for_function("() => window.__opens >= 2", timeout=15_000)
            during.set()
            await page.wait_for_function("() => window.__ended", timeout=15_000)
        frames = await page.evaluate("window.__frames")
    finally:
        await context.close()
    assert [int(f[1]) for f in frames] == list(range(1, len(frames) + 1))
    assert "".join(f[2] for f in frames) == "".join(WORDS)
    assert frames[-1][0] == "done"
    resumed = [r for r in caplog.records if r.name == "llm_sse.follower" and r.after > 0]  # type: ignore[attr-defined]
    assert resumed, "the second connection did not send Last-Event-ID"
