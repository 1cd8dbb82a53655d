"""A chat answered in one piece (OpenAI's ``stream: false``), with every stream's guarantees.

The same ``Generation`` as a streamed answer -- providers in order with
fallback, the first-token and idle timeouts, the record and the metrics --
raced against the same idle watchdog, but its sink gathers the encoder's
bytes instead of writing them: nothing is committed until the answer is
complete, so any failure is still an HTTP status with the protocol's JSON
error.  There is nothing to ping (a JSON body has no room for keep-alives);
a client that leaves cancels the handler, which cancels the pump and closes
the upstream, exactly as Stop does for a stream.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from ..chat import ChatRequest
from ..encoders.base import Encoder
from ..errors import ApiError
from ..events import Done
from ..providers.base import Provider
from ..routing import ProviderRouter
from ..settings import Settings
from ..streamlog import StreamObserver, StreamRecord, finish
from .generation import Generation
from .race import Ending, Race, watchdog
from .registry import StreamRegistry
from .writer import ClientGone, error_response


class BufferSink:
    """A sink that keeps what it is sent; never committed, so errors stay HTTP statuses."""

    committed = False

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    async def commit(self) -> None:
        """Nothing goes out before the answer is complete."""

    async def send(self, data: bytes) -> None:
        if data:
            self.parts.append(data)

    async def close(self) -> None:
        """The answer is complete; the handler sends it."""


class Completion:
    """One chat answered with one body in ``encoder``'s protocol."""

    def __init__(
        self,
        chat: ChatRequest,
        router: ProviderRouter[Provider],
        settings: Settings,
        record: StreamRecord,
        encoder: Encoder,
        *,
        registry: StreamRegistry,
        observers: list[StreamObserver],
    ) -> None:
        self.encoder = encoder
        self.sink = BufferSink()
        self.generation = Generation(chat, router, settings, record, encoder, self.sink)
        self.settings = settings
        self.record = record
        self.registry = registry
        self.observers = observers
        self._race: Race[Done] | None = None

    def end(self, error: ApiError) -> None:
        """End the answer from outside (shutdown) with ``error`` as its status."""
        if self._race is not None:
            self._race.end(error)

    async def run(self) -> web.Response:
        generation = self.generation
        self.registry.add(self)
        race = self._race = Race(
            generation.pump(),
            watchdog(upstream=generation, idle_timeout=self.settings.idle_timeout),
        )
        ending = Ending("cancelled")
        try:
            ending = await generation.finish(await race.result(ClientGone))
            if ending.error is not None:
                return error_response(self.encoder, ending.error)
            return web.Response(
                body=b"".join(self.sink.parts),
                headers={"Content-Type": self.encoder.content_type, **self.encoder.headers},
            )
        except asyncio.CancelledError:
            raise
        finally:
            await race.stop()
            finish(self.record, ending.outcome, self.observers, ending.message)
            try:
                await generation.release_upstream()
            finally:
                self.registry.remove(self)
