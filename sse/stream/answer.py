"""One chat answered on the request that asked it: the part every such answer shares.

``Answer`` is the coordinator of the ``Race`` (ARCHITECTURE.md, "A stream's
task shape"): the **pump** (``Generation.pump``: providers in order, then the
encoder's bytes for each event, into the sink) against the one **watchdog**
(heartbeats when the sink is a client's ``EventStreamWriter``, and the
upstream's idle timeout once it has produced its first event), then the one
finishing step.  However it ends -- done, an error, shutdown (``end``), a
send timeout, or the handler cancelled because the client left -- the answer
is in the registry exactly while it runs, its record is finished once, and a
finished upstream is released only after the terminal event.

What differs is left to its owner: the sink it writes to and the HTTP answer
it makes of the ``Ending`` (``chat_stream``: the event stream, or a status and
JSON if nothing was committed; ``completion``: one body).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from ..chat import ChatRequest
from ..encoders.base import Encoder
from ..errors import ApiError
from ..events import Done
from ..providers.base import Provider
from ..routing import ProviderRouter
from ..settings import Settings
from ..streamlog import StreamObserver, StreamRecord, finish
from .generation import Generation, Sink
from .race import Ending, Race, gone, watchdog
from .registry import StreamRegistry
from .writer import ClientGone, EventStreamWriter


class Answer:
    """A generation into ``sink``, raced against its watchdog and finished once; ``end`` stops it."""

    __slots__ = ("_race", "generation", "observers", "record", "registry", "settings", "writer")

    def __init__(
        self,
        chat: ChatRequest,
        router: ProviderRouter[Provider],
        settings: Settings,
        record: StreamRecord,
        encoder: Encoder,
        sink: Sink,
        *,
        registry: StreamRegistry,
        observers: list[StreamObserver],
        meta_extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.generation = Generation(chat, router, settings, record, encoder, sink, meta_extra=meta_extra)
        # A client's writer gets heartbeats, and says why the handler was cancelled.
        self.writer = sink if isinstance(sink, EventStreamWriter) else None
        self.settings = settings
        self.record = record
        self.registry = registry
        self.observers = observers
        self._race: Race[Done] | None = None

    def end(self, error: ApiError) -> None:
        """End the answer from outside (shutdown) with ``error`` as its terminal event."""
        if self._race is not None:
            self._race.end(error)

    async def run(self) -> Ending:
        """Generate until the race ends, write the terminal event, and say how it ended.

        ``Ending.error`` is the terminal error; if the sink was never
        committed it was not written, and the owner answers it with its
        status.  A cancelled handler re-raises after the bookkeeping.
        """
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
        except asyncio.CancelledError:
            if writer is not None:
                ending = gone(writer.gone(), settings.send_timeout)
            raise
        finally:
            await race.stop()
            race.drop_tracebacks()  # logged by now (``generation.finish``)
            if writer is not None:
                self.record.heartbeats = writer.pings
            finish(self.record, ending.outcome, self.observers, ending.message)
            try:
                await generation.release_upstream()
            finally:
                self.registry.remove(self)
        return ending
