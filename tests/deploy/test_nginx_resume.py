"""Resumable streams through the nginx site: a resume streams unbuffered, and its token is never logged.

The site gives ``/api/streams/`` its own location: event-stream settings like
``/api/chat``, and an access log format without the query string, because an
EventSource carries its resume token as ``?token=``.  The negative test shows
the log check failing with nginx's usual format.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from sse.eventstream import EventStreamDecoder
from tests.deploy.nginx import Nginx, StartProxy
from tests.deploy.streams import CHAT, Hold, Stream
from tests.fakes.ollama import FakeOllama, Gate, Script, token_lines
from tests.helpers import Frame, MakeService, eventually, text_of

pytestmark = pytest.mark.slow


async def resumed_through(
    nginx: Nginx, fake: FakeOllama, client: aiohttp.ClientSession
) -> tuple[dict[str, Any], list[Frame], bool]:
    """Start a resumable stream through nginx, leave it, resume it by URL with ?token=.

    Returns the stream's meta, the resumed frames, and whether the first
    resumed token arrived while the upstream still held the rest.
    """
    first, second = Hold(), Hold()
    steps = token_lines(["Hello", " world", "."])
    steps.insert(2, Gate(second))
    steps.insert(1, Gate(first))
    fake.push(Script(steps))
    stream = Stream(client, nginx.url + "/api/chat", body={**CHAT, "resumable": True})
    assert await stream.wait_first_token(10.0)
    meta = stream.frames[0].data
    await stream.abort()
    first.set()
    async with asyncio.timeout(10):
        await second.reached.wait()
    url = f"{nginx.url}{meta['resume']['url']}?token={meta['resume']['token']}&after=2"
    frames: list[Frame] = []
    decoder = EventStreamDecoder()
    async with client.get(url, headers={"Accept-Encoding": "gzip"}) as response:
        assert response.status == 200
        assert "Content-Encoding" not in response.headers
        chunks = response.content.iter_any()
        try:
            async with asyncio.timeout(10):
                while not any(f.event == "token" for f in frames):
                    frames += [Frame.of(e) for e in decoder.feed(await anext(chunks))]
            while_held = not fake.requests[-1].finished
        except TimeoutError:
            while_held = False
        second.set()
        async for chunk in chunks:
            frames += [Frame.of(e) for e in decoder.feed(chunk)]
    return meta, frames, while_held


async def test_a_resume_through_nginx_streams_unbuffered_and_its_token_stays_out_of_the_access_log(
    start_proxy: StartProxy,
    deployed: MakeService,
    fake_ollama: FakeOllama,
    client: aiohttp.ClientSession,
    workdir: Path,
) -> None:
    service = await deployed()
    nginx = await start_proxy(service.url)
    meta, frames, while_held = await resumed_through(nginx, fake_ollama, client)
    assert while_held
    assert text_of(frames) == " world."
    assert frames[-1].event == "done"
    access_log = workdir / "access.log"
    await eventually(lambda: access_log.exists() and meta["id"] in access_log.read_text())
    logged = access_log.read_text()
    assert f'"GET {meta["resume"]["url"]} HTTP/1.1" 200' in logged
    assert meta["resume"]["token"] not in logged
    assert "token=" not in logged


async def test_with_nginxs_usual_log_format_the_token_would_be_logged(
    start_proxy: StartProxy,
    deployed: MakeService,
    fake_ollama: FakeOllama,
    client: aiohttp.ClientSession,
    workdir: Path,
) -> None:
    """The check above can fail: the site's own log format is what keeps the token out."""
    service = await deployed()
    access_log = workdir / "access.log"
    nginx = await start_proxy(service.url, override={"access_log": [str(access_log), "combined"]})
    meta, _, _ = await resumed_through(nginx, fake_ollama, client)
    await eventually(lambda: access_log.exists() and meta["id"] in access_log.read_text())
    assert meta["resume"]["token"] in access_log.read_text()
