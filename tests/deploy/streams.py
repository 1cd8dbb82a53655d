"""Reading a stream through a proxy in the background, and holding an upstream answer.

A test that asks "did the first token arrive while the upstream still held the
rest?" must keep reading while it decides when to let the upstream go on; so
the request runs in its own task and reports what arrived, and when.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, Literal

import aiohttp

from sse.eventstream import EventStreamDecoder
from tests.fakes.ollama import Gate, Script, Step, token_lines
from tests.helpers import Frame

CHAT = {"messages": [{"role": "user", "content": "Why is the sky blue?"}]}


class Hold(asyncio.Event):
    """A fake upstream's gate that also says when the upstream has reached it.

    Once ``reached`` is set, everything before the gate has been written to
    the socket, and nothing after it will be until the test calls ``set()``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.reached = asyncio.Event()

    async def wait(self) -> Literal[True]:
        self.reached.set()
        return await super().wait()


def held_answer(hold: Hold, first: str = "Hello", rest: tuple[str, ...] = (" world", ".")) -> Script:
    """An ordinary answer whose first token is sent, then the rest held at ``hold``."""
    steps: list[Step] = token_lines([first, *rest])
    steps.insert(1, Gate(hold))
    return Script(steps)


class Stream:
    """``POST /api/chat`` run in a task: frames and raw bytes as they arrive."""

    def __init__(
        self, client: aiohttp.ClientSession, url: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> None:
        self.frames: list[Frame] = []
        self.raw = bytearray()
        self.response: aiohttp.ClientResponse | None = None
        self.opened = asyncio.Event()
        self.first_token = asyncio.Event()
        self.truncated = False  # the connection ended without the chunked terminator
        self._task = asyncio.create_task(self._run(client, url, CHAT if body is None else body, headers or {}))

    async def _run(self, client: aiohttp.ClientSession, url: str, body: Any, headers: dict[str, str]) -> None:
        async with client.post(url, json=body, headers=headers) as response:
            self.response = response
            self.opened.set()
            decoder = EventStreamDecoder()
            try:
                async for chunk in response.content.iter_any():
                    self.raw += chunk
                    self._add(decoder.feed(chunk))
            except aiohttp.ClientPayloadError:
                self.truncated = True
            self._add(decoder.close())

    def _add(self, events: Any) -> None:
        for event in events:
            frame = Frame.of(event)
            self.frames.append(frame)
            if frame.event == "token":
                self.first_token.set()

    async def wait_first_token(self, within: float) -> bool:
        """True if a token arrives within ``within`` seconds (the stream goes on either way)."""
        try:
            async with asyncio.timeout(within):
                await self.first_token.wait()
        except TimeoutError:
            return False
        return True

    async def wait_opened(self, within: float = 10.0) -> aiohttp.ClientResponse:
        waiter = asyncio.create_task(self.opened.wait())
        try:
            async with asyncio.timeout(within):
                await asyncio.wait({self._task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if not self.opened.is_set():
            self._task.result()  # raise what went wrong
        assert self.response is not None
        return self.response

    async def finish(self, within: float = 20.0) -> list[Frame]:
        """Wait until the server ends the response; the frames received."""
        async with asyncio.timeout(within):
            await self._task
        return self.frames

    async def abort(self) -> None:
        """Close the connection, as a browser's Stop does."""
        if self.response is not None:
            self.response.close()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    @property
    def terminal(self) -> Frame | None:
        ends = [f for f in self.frames if f.event in ("done", "error")]
        return ends[-1] if ends else None


class LogWaiter(logging.Handler):
    """Collects the service's log records so a test can await one."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self._changed = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self._changed.set()

    def streams(self) -> list[dict[str, Any]]:
        """The fields of every stream log line so far."""
        return [
            r.fields for r in self.records if r.name == "llm_sse.stream" and isinstance(r.__dict__.get("fields"), dict)
        ]  # type: ignore[attr-defined]

    async def wait_stream(
        self, matches: Callable[[dict[str, Any]], bool] = lambda _: True, within: float = 10.0
    ) -> dict[str, Any]:
        """The first stream log line whose fields match."""
        async with asyncio.timeout(within):
            while True:
                for fields in self.streams():
                    if matches(fields):
                        return fields
                self._changed.clear()
                await self._changed.wait()
