"""What every stream does, whoever reads it: providers in order -> events -> an encoder -> a sink.

``Generation.pump`` tries the providers in order (``routing.ProviderRouter``)
until one yields a first event within ``first_token_timeout``: a provider
fails over only with an error whose ``fallback`` flag is set, raised before
its first event, and only those start its cool-down.  From the first event
on, each event becomes the encoder's bytes, handed to the sink: the client's
``EventStreamWriter`` for a direct stream, a frame log for a resumable one.

``Generation.finish`` is the one finishing step: given what ended the race,
it writes the terminal event (``done`` or ``error``, after the start if none
went out) and returns the ``Ending``.  The record (one log line per stream)
and the summary in the terminal event are built here, so every path and
every protocol reports the same way.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Protocol

from ..chat import ChatRequest
from ..encoders.base import Encoder, StreamMeta, StreamSummary
from ..errors import ApiError, UpstreamDisconnected, UpstreamError, UpstreamTimeout
from ..events import Done, Event, Skipped, StreamError, Thinking, Token, ToolCall
from ..providers.base import Provider
from ..routing import ProviderRouter
from ..settings import Settings
from ..streamlog import Attempt, StreamRecord
from .race import Ending, gone
from .writer import ClientGone, SendTimeout

log = logging.getLogger("llm_sse.relay")


class Sink(Protocol):
    """Where a generation's bytes go: a client's writer, or a resumable stream's frame log."""

    @property
    def committed(self) -> bool:
        """Whether the stream's start is final (a client's HTTP status has gone out)."""

    async def commit(self) -> None: ...

    async def send(self, data: bytes) -> None: ...

    async def close(self) -> None:
        """After the terminal event: nothing follows."""


class Generation:
    """One stream's generation: the pump, the state its watchdog reads, and its finish."""

    def __init__(
        self,
        chat: ChatRequest,
        router: ProviderRouter[Provider],
        settings: Settings,
        record: StreamRecord,
        encoder: Encoder,
        sink: Sink,
        *,
        meta_extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.chat = chat
        self.router = router
        self.settings = settings
        self.record = record
        self.encoder = encoder
        self.sink = sink
        self.meta_extra: Mapping[str, Any] = meta_extra or {}
        self.meta: StreamMeta | None = None  # set when the start goes out
        self._loop = asyncio.get_running_loop()
        self.streaming = False  # True once a provider has produced its first event
        # Resolved with ``streaming``: a watchdog asleep while there was no idle
        # deadline yet must wake to start one.  A bare future, not an
        # ``asyncio.Event``: an Event allocates a deque up front, and every open
        # stream pays for it.
        self.first_event: asyncio.Future[None] = self._loop.create_future()
        self.last_upstream = self._loop.time()
        # The upstream of an answer that is done, closed only once the terminal
        # event is written: closing may drain the rest of its body to pool the
        # connection, and the client must not wait for that.
        self._finished_upstream: AsyncIterator[Event] | None = None

    @property
    def started(self) -> bool:
        """The stream's start (``meta``) has gone to the sink."""
        return self.meta is not None

    def idle_error(self) -> ApiError:
        return UpstreamTimeout(f"{self.record.provider} sent nothing for {self.settings.idle_timeout:g} s")

    # -- the pump: providers in order, then every event

    async def pump(self) -> Done:
        last_error: UpstreamError | None = None
        candidates = self.router.candidates()
        # Providers left out because they failed recently: named in the log
        # line, so an answer from the second provider is never a mystery.
        self.record.cooling = [p.name for p in self.router.providers if p not in candidates]
        for provider in candidates:
            stream: AsyncIterator[Event] | None = None
            # Unreadable lines are no answer: they are held until a real first
            # event, so an upstream that sends nothing else (an HTML page, a
            # proxy's error) still fails before the stream, and falls back.
            held: list[Event] = []
            try:
                try:
                    async with asyncio.timeout(self.settings.first_token_timeout):
                        model = await provider.resolve_model(self.chat.model)
                        self.record.provider, self.record.model = provider.name, model
                        stream = provider.stream(self.chat, model)
                        first = await anext(stream)
                        while type(first) is Skipped:
                            held.append(first)
                            first = await anext(stream)
                except TimeoutError:
                    raise UpstreamTimeout(
                        f"{provider.name} sent nothing within {self.settings.first_token_timeout:g} s"
                    ) from None
                except StopAsyncIteration:
                    raise UpstreamDisconnected(f"{provider.name} ended the stream before any output") from None
            except UpstreamError as error:
                if stream is not None:
                    await _close(stream)
                detail = ", ".join(f"{name}: {value}" for name, value in error.log_fields.items())
                self.record.attempts.append(Attempt(provider.name, error.code, error.message, detail))
                if not error.fallback:
                    # The request's fault (unknown model, rejected input), not the
                    # provider's: no other provider, and no cool-down.
                    raise
                self.router.failed(provider)
                last_error = error
                continue
            self.router.succeeded(provider)
            self.record.served = True
            assert stream is not None
            for skipped in held:  # counted and logged for the provider that serves
                await self._other(provider, skipped)
            try:
                done = await self._relay(provider, first, stream)
            except BaseException:
                await _close(stream)
                raise
            self._finished_upstream = stream
            return done
        assert last_error is not None
        raise last_error

    async def _relay(self, provider: Provider, first: Event, stream: AsyncIterator[Event]) -> Done:
        self.streaming = True
        if not self.first_event.done():
            self.first_event.set_result(None)
        time_now = self._loop.time
        self.last_upstream = time_now()
        await self.start()
        event: Event | None = first
        iterator = aiter(stream)
        record = self.record
        send = self.sink.send
        token = self.encoder.token
        thinking = self.encoder.thinking
        # Once per upstream read: one event (the tokens of a read are already
        # merged), one encoding, one write.
        while True:
            if event is None:
                try:
                    event = await anext(iterator)
                except StopAsyncIteration:
                    raise UpstreamDisconnected(f"{provider.name} ended the stream without finishing") from None
                self.last_upstream = time_now()
            kind = type(event)
            if kind is Token:
                assert isinstance(event, Token)
                await send(token(event.text))
                if record.first_token_at is None:
                    record.first_token_at = time.monotonic()
                record.tokens += event.count
            elif kind is Thinking:
                assert isinstance(event, Thinking)
                await send(thinking(event.text))
                if record.first_token_at is None:
                    record.first_token_at = time.monotonic()
                record.thinking_tokens += event.count
            elif kind is Done:
                assert isinstance(event, Done)
                return event
            elif kind is StreamError:
                assert isinstance(event, StreamError)
                raise UpstreamError(event.message, code=event.code)
            else:
                await self._other(provider, event)
            event = None

    async def _other(self, provider: Provider, event: Event) -> None:
        """Events that are not text: rare, so off the token path's first checks.

        The place for each new kind of event.
        """
        if isinstance(event, ToolCall):
            await self.sink.send(self.encoder.tool_call(event))
            if self.record.first_token_at is None:
                self.record.first_token_at = time.monotonic()
            self.record.tool_calls += 1
        elif isinstance(event, Skipped):
            self.record.skipped_lines += event.count
            log.warning(
                "skipped upstream lines",
                extra={
                    "stream": self.record.id,
                    "provider": provider.name,
                    "count": event.count,
                    "sample": event.sample,
                },
            )
        else:
            log.warning("event not relayed", extra={"stream": self.record.id, "event": type(event).__name__})

    async def release_upstream(self) -> None:
        """Close a finished answer's upstream, after its terminal event went out.

        Closing drains the rest of the upstream body (bounded), so the
        connection goes back to the pool instead of being torn down.
        """
        stream, self._finished_upstream = self._finished_upstream, None
        if stream is not None:
            await _close(stream)

    # -- the start and the end

    async def start(self) -> None:
        """Send the stream's start (once): commit the sink, then the encoder's first bytes."""
        if self.meta is not None:
            return
        record = self.record
        meta = self.meta = StreamMeta(record.id, record.model, record.provider, self.meta_extra)
        await self.sink.commit()
        await self.sink.send(self.encoder.start(meta))

    async def finish(self, result: object) -> Ending:
        """Write the terminal event for ``result`` (what ended the race); return the ending.

        An error before anything was committed is not written: the caller
        answers it with its status (``Ending.error``).
        """
        if isinstance(result, ClientGone | SendTimeout):
            return gone(result, self.settings.send_timeout)
        error: ApiError | None = None
        if isinstance(result, Done):
            ending = Ending("done")
        else:
            error = as_api_error(result, self.record.id)
            ending = Ending(error.code, error.message, error)
            if not self.sink.committed:
                return ending
        try:
            await self.start()
            if isinstance(result, Done):
                await self.sink.send(self.encoder.done(result, self.summary(result)))
            else:
                assert error is not None
                await self.sink.send(self.encoder.error(error))
            await self.sink.close()
        except (ClientGone, SendTimeout, ConnectionError):
            return Ending("cancelled")
        return ending

    def summary(self, done: Done) -> StreamSummary:
        record = self.record
        now = time.monotonic()
        completion = done.usage.completion_tokens
        if completion is None:
            completion = record.tokens + record.thinking_tokens
        generation_s = done.generation_s
        if generation_s is None and record.first_token_at is not None:
            generation_s = now - record.first_token_at
        return StreamSummary(
            prompt_tokens=done.usage.prompt_tokens,
            completion_tokens=completion,
            ttft_ms=record.ttft_ms,
            total_ms=round((now - record.started) * 1000, 1),
            tokens_per_s=round(completion / generation_s, 1) if generation_s else None,
            skipped_lines=record.skipped_lines,
        )


def as_api_error(result: object, stream_id: str) -> ApiError:
    """What the client is told: an ``ApiError`` as it is; anything else is logged and becomes a 500."""
    if isinstance(result, ApiError):
        return result
    log.error(
        "stream failed",
        exc_info=result if isinstance(result, BaseException) else None,
        extra={"stream": stream_id},
    )
    return ApiError("the relay failed; the server log has details")


async def _close(stream: AsyncIterator[Event]) -> None:
    aclose: Callable[[], Any] | None = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()
