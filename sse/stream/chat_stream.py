"""The direct stream: one request answered as an event stream, written straight to its client.

Shape (ARCHITECTURE.md, "A stream's task shape"): the request handler is the
coordinator of a ``Race`` of two sibling tasks --

* the **pump** (``Generation.pump``): providers in order until one yields a
  first event, then the encoder's bytes for every event, to the client's
  ``EventStreamWriter``; it returns the upstream's ``Done`` or raises;
* the **watchdog**: a heartbeat after ``heartbeat`` seconds of silence
  towards the client (which also notices a dead client), and the idle
  timeout once the upstream has produced its first event.

The third way out is the **disconnect**: aiohttp cancels the handler when the
client goes (the runner has ``handler_cancellation=True``), and cancelling
the coordinator cancels both tasks, which closes the upstream response at
once -- even while the upstream is silent.  The fourth is **shutdown**:
``end()`` ends the race with a reason.

Whatever ends first, the race stops the other task and only then is the
terminal event written, so nothing can follow ``done``/``error``.  An error
before the status was committed is answered with its status and the
protocol's JSON error instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from ..chat import ChatRequest
from ..encoders.base import Encoder
from ..encoders.native import NativeEncoder
from ..errors import ApiError
from ..events import Done
from ..providers.base import Provider
from ..routing import ProviderRouter
from ..settings import Settings
from ..streamlog import StreamObserver, StreamRecord, finish
from .generation import Generation
from .race import Ending, Race, gone, watchdog
from .registry import StreamRegistry
from .writer import ClientGone, EventStreamWriter, error_response


class ChatStream:
    """One chat answered as an event stream in ``encoder``'s protocol (llm-sse's own by default)."""

    def __init__(
        self,
        request: web.Request,
        chat: ChatRequest,
        router: ProviderRouter[Provider],
        settings: Settings,
        record: StreamRecord,
        *,
        registry: StreamRegistry,
        observers: list[StreamObserver],
        encoder: Encoder | None = None,
        meta_extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.encoder: Encoder = encoder if encoder is not None else NativeEncoder()
        self.writer = EventStreamWriter.for_encoder(request, self.encoder, send_timeout=settings.send_timeout)
        self.generation = Generation(chat, router, settings, record, self.encoder, self.writer, meta_extra=meta_extra)
        self.settings = settings
        self.record = record
        self.registry = registry
        self.observers = observers
        self._race: Race[Done] | None = None

    def end(self, error: ApiError) -> None:
        """End the stream from outside (shutdown) with ``error`` as its terminal event."""
        if self._race is not None:
            self._race.end(error)

    async def run(self) -> web.StreamResponse:
        settings, writer, generation = self.settings, self.writer, self.generation
        self.registry.add(self)
        race = self._race = Race(
            generation.pump(),
            watchdog(
                writer=writer,
                heartbeat=settings.heartbeat,
                upstream=generation,
                idle_timeout=settings.idle_timeout,
            ),
        )
        ending = Ending("cancelled")
        try:
            ending = await generation.finish(await race.result(ClientGone))
            if ending.error is not None and not writer.committed:
                return error_response(self.encoder, ending.error)
            return writer.response
        except asyncio.CancelledError:
            ending = gone(writer.gone(), settings.send_timeout)
            raise
        finally:
            await race.stop()
            self.record.heartbeats = writer.pings
            finish(self.record, ending.outcome, self.observers, ending.message)
            try:
                await generation.release_upstream()
            finally:
                self.registry.remove(self)
