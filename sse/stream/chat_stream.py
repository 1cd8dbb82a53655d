"""The direct stream: one request answered as an event stream, written straight to its client.

An ``Answer`` (``sse.stream.answer``) whose sink is the client's
``EventStreamWriter``: its watchdog sends a heartbeat after ``heartbeat``
seconds of silence towards the client (which also notices a dead client) as
well as checking the idle timeout.  The status is committed late, so an error
before anything went out is answered with its status and the protocol's JSON
error instead of an event.  A client that leaves cancels the handler (the
runner has ``handler_cancellation=True``), which cancels the race and closes
the upstream at once -- even while the upstream is silent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from ..chat import ChatRequest
from ..encoders.base import Encoder
from ..encoders.native import NativeEncoder
from ..providers.base import Provider
from ..routing import ProviderRouter
from ..settings import Settings
from ..streamlog import StreamObserver, StreamRecord
from .answer import Answer
from .registry import StreamRegistry
from .writer import EventStreamWriter, error_response


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
        self.answer = Answer(
            chat,
            router,
            settings,
            record,
            self.encoder,
            self.writer,
            registry=registry,
            observers=observers,
            meta_extra=meta_extra,
        )

    async def run(self) -> web.StreamResponse:
        ending = await self.answer.run()
        if ending.error is not None and not self.writer.committed:
            return error_response(self.encoder, ending.error)
        return self.writer.response
