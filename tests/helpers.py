"""Small helpers shared by the tests: read our event streams, start the service."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from sse.eventstream import EventStreamDecoder, ServerSentEvent
from sse.logs import JsonFormatter
from sse.settings import Settings
from sse.web.app import create_app, make_runner
from sse.web.keys import OBSERVERS


@dataclass
class Frame:
    event: str
    data: Any
    id: str

    @classmethod
    def of(cls, event: ServerSentEvent) -> Frame:
        return cls(event.type, json.loads(event.data), event.last_event_id)


async def iter_frames(response: aiohttp.ClientResponse) -> AsyncIterator[Frame]:
    """Parse a response as it arrives, with the spec-exact decoder."""
    decoder = EventStreamDecoder()
    async for chunk in response.content.iter_any():
        for event in decoder.feed(chunk):
            yield Frame.of(event)
    for event in decoder.close():
        yield Frame.of(event)


async def read_frames(response: aiohttp.ClientResponse) -> list[Frame]:
    return [frame async for frame in iter_frames(response)]


def text_of(frames: list[Frame], kind: str = "token") -> str:
    return "".join(f.data["text"] for f in frames if f.event == kind)


def naive_parse(body: str) -> list[tuple[str, Any]]:
    """The seed guide's reader: an ``event:`` line, then one ``data:`` line.

    Uses ``splitlines()`` on purpose -- the trap a naive reader falls into --
    so frames that contain U+2028 and friends must still parse.
    """
    frames = []
    event = None
    for line in body.splitlines():
        if line.startswith("event:"):
            event = line[len("event:") :].strip()
        elif line.startswith("data:") and event is not None:
            frames.append((event, json.loads(line[len("data:") :].strip())))
            event = None
    return frames


@dataclass
class Service:
    url: str
    app: web.Application
    runner: web.AppRunner
    settings: Settings

    async def stop(self) -> None:
        await self.runner.cleanup()


MakeService = Callable[..., Awaitable[Service]]
"""The ``make_service`` fixture: start the service with settings overridden by keyword."""


async def start_service(settings: Settings, providers: list[Any] | None = None) -> Service:
    """Run the real application on a loopback port, the way the CLI does."""
    app = create_app(settings, providers)
    runner = make_runner(app, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return Service(f"http://127.0.0.1:{port}", app, runner, settings)


async def eventually(condition: Any, *, within: float = 5.0, every: float = 0.01) -> None:
    """Wait for ``condition()`` to hold, checking every ``every`` s, failing after ``within`` s.

    For states with no event to await (a socket closed in another process's view,
    a task count); where an event exists, tests await the event instead.
    """
    import asyncio
    import time

    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within} s: {condition}")
        await asyncio.sleep(every)


class StreamRecords:
    """Collects the service's per-stream records as each stream ends (its log line's fields).

    The record is finished after the last byte is written, so a test that has
    read the whole answer awaits ``next()`` instead of racing the handler.
    """

    def __init__(self, app: web.Application) -> None:
        self.records: list[Any] = []
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        app[OBSERVERS].append(self._observe)

    def __len__(self) -> int:
        """How many streams have ended so far."""
        return len(self.records)

    def _observe(self, record: Any) -> None:
        self.records.append(record)
        self._queue.put_nowait(record)

    async def next(self, within: float = 10.0) -> dict[str, Any]:
        """The next finished stream's log fields."""
        async with asyncio.timeout(within):
            record = await self._queue.get()
        fields: dict[str, Any] = record.fields()
        return fields


async def post_chat(
    client: aiohttp.ClientSession, service: Service, body: dict[str, Any]
) -> tuple[aiohttp.ClientResponse, list[Frame] | Any]:
    """POST a chat; the frames of a stream, or the JSON body of an error."""
    async with client.post(service.url + "/api/chat", json=body) as response:
        if response.content_type == "text/event-stream":
            return response, await read_frames(response)
        return response, await response.json()


def logged(caplog: Any) -> str:
    """Captured log records as the service writes them: JSON lines with every field."""
    formatter = JsonFormatter()
    return "\n".join(formatter.format(record) for record in caplog.records)
