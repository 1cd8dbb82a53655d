"""A chat answered in one piece (OpenAI's ``stream: false``), with every stream's guarantees.

An ``Answer`` (``sse.stream.answer``) like a streamed one -- providers in
order with fallback, the first-token and idle timeouts, the record and the
metrics -- but its sink gathers the encoder's bytes instead of writing them:
nothing is committed until the answer is complete, so any failure is still
an HTTP status with the protocol's JSON error.  There is nothing to ping (a
JSON body has no room for keep-alives); a client that leaves cancels the
handler, which cancels the pump and closes the upstream, exactly as Stop
does for a stream.
"""

from __future__ import annotations

from aiohttp import web

from ..chat import ChatRequest
from ..encoders.base import Encoder
from ..providers.base import Provider
from ..routing import ProviderRouter
from ..settings import Settings
from ..streamlog import StreamObserver, StreamRecord
from .answer import Answer
from .registry import StreamRegistry
from .writer import error_response


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
        self.answer = Answer(chat, router, settings, record, encoder, self.sink, registry=registry, observers=observers)

    async def run(self) -> web.Response:
        ending = await self.answer.run()
        if ending.error is not None:
            return error_response(self.encoder, ending.error)
        return web.Response(
            body=b"".join(self.sink.parts),
            headers={"Content-Type": self.encoder.content_type, **self.encoder.headers},
        )
