"""A stream's life: from a validated request to exactly one terminal frame.

``Generation`` is what every stream does, whoever reads it: providers in
order with fallback, events to numbered frames, the record.  ``ChatStream``
is the ordinary (not resumable) stream, writing those frames straight to the
client; ``sse.resumable`` writes them to a frame log instead.

Shape of a ``ChatStream`` (see ARCHITECTURE.md): the request handler is the
coordinator.  It starts two sibling tasks and waits for the first to end:

* the **pump** tries the providers in order until one yields a first event,
  then writes ``meta`` and every ``token``/``thinking`` frame as events arrive,
  and returns the upstream's ``Done`` (or raises its error);
* the **watchdog** sends a ``: ping`` after ``heartbeat`` seconds of silence
  towards the client (which also notices a dead client), and ends the stream
  when the upstream has been idle for ``idle_timeout`` after its first token;
  it uses one timer per interval, not one per token.

The third way out is the **disconnect**: aiohttp cancels the handler when the
client goes (we run it with ``handler_cancellation=True``), and cancelling the
coordinator cancels both tasks, which closes the upstream response at once --
even while the upstream is silent.  A failing write (client gone without the
cancellation, or a send timeout) ends the stream the same way.  The fourth is
**shutdown**: ``end()`` cancels the pump with a reason.

Whatever ends first, the coordinator stops the other tasks and only then
writes the terminal frame, so nothing can follow ``done``/``error``.  The HTTP
status is committed late, when there is something to send (the first event,
or the first heartbeat), so an upstream that fails fast gets the client a
real status code and a JSON error rather than an error frame.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from aiohttp import web

from .. import frames
from ..chat import ChatRequest
from ..errors import ApiError, UpstreamDisconnected, UpstreamError, UpstreamTimeout
from ..events import Done, Event, Skipped, StreamError, Thinking, Token
from ..providers.base import Provider
from ..routing import ProviderRouter
from ..settings import Settings
from ..streamlog import Attempt, StreamObserver, StreamRecord, finish

log = logging.getLogger("llm_sse.relay")

PING = frames.comment("ping")
# A write of at most this many bytes into an empty transport buffer cannot
# block: asyncio pauses writing only above the high-water mark (64 KiB by
# default), so the common small-token write skips the timeout's timer.
_UNBLOCKED_WRITE = 16 * 1024
SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}


class ClientGone(Exception):
    """The client closed its connection (Stop, a closed tab, a network drop)."""


class SendTimeout(Exception):
    """The client stopped reading; a write waited longer than ``send_timeout``."""


def new_stream_id() -> str:
    """128 bits from the OS's CSPRNG: ids are unguessable, not just unique."""
    return secrets.token_urlsafe(16)


class Endable(Protocol):
    """Something the registry can end at shutdown."""

    def end(self, error: ApiError) -> object: ...


class StreamRegistry:
    """What is alive in this process, for graceful shutdown and health.

    ``streams`` are generations (a ``ChatStream``, or a resumable stream's
    generation); ``followers`` are connections reading a resumable stream.
    """

    def __init__(self) -> None:
        self.streams: set[Endable] = set()
        self.followers: set[Endable] = set()
        self.draining = False
        self._idle = asyncio.Event()
        self._idle.set()

    def add(self, stream: Endable) -> None:
        self.streams.add(stream)
        self._idle.clear()

    def remove(self, stream: Endable) -> None:
        self.streams.discard(stream)
        self._check_idle()

    def add_follower(self, follower: Endable) -> None:
        self.followers.add(follower)
        self._idle.clear()

    def remove_follower(self, follower: Endable) -> None:
        self.followers.discard(follower)
        self._check_idle()

    def _check_idle(self) -> None:
        if not self.streams and not self.followers:
            self._idle.set()

    async def wait_idle(self, within: float) -> bool:
        """Wait until no stream or follower is open; False if ``within`` seconds passed first."""
        try:
            async with asyncio.timeout(within):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True

    def end_all(self, error: ApiError) -> None:
        for stream in list(self.streams):
            stream.end(error)
        for follower in list(self.followers):
            follower.end(error)


class Generation:
    """What every stream does, whoever reads it.

    Providers are tried in order (with fallback and the first-token timeout)
    until one yields a first event; then each event becomes a numbered frame,
    handed to ``_send``.  A subclass decides where frames go: ``ChatStream``
    writes them to the client's response, ``resumable.ResumableGeneration``
    appends them to a frame log that followers replay.  The record (one log
    line per stream) and the ``done`` frame's data are built here too, so both
    paths report the same way.
    """

    def __init__(
        self,
        chat: ChatRequest,
        router: ProviderRouter[Provider],
        settings: Settings,
        record: StreamRecord,
    ) -> None:
        self.chat = chat
        self.router = router
        self.settings = settings
        self.record = record
        self._loop = asyncio.get_running_loop()
        self._seq = 0
        self._meta_sent = False
        self._streaming = False  # True once a provider has produced its first event
        # Resolved with ``_streaming``: a watchdog asleep while there was no idle
        # deadline yet must wake to start one.  A bare future, not an
        # ``asyncio.Event``: an Event allocates a deque up front, and every open
        # stream pays for it.
        self._streaming_started: asyncio.Future[None] = self._loop.create_future()
        self.last_upstream = self._loop.time()
        # The upstream of an answer that is done, closed by the coordinator only
        # once ``done`` is written: closing may drain the rest of its body to
        # pool the connection, and the client must not wait for that.
        self._finished_upstream: AsyncIterator[Event] | None = None

    # -- the pump: providers in order, then every event

    async def _pump(self) -> Done:
        last_error: UpstreamError | None = None
        candidates = self.router.candidates()
        # Providers left out because they failed recently: named in the log
        # line, so an answer from the second provider is never a mystery.
        self.record.cooling = [p.name for p in self.router.providers if p not in candidates]
        for provider in candidates:
            stream: AsyncIterator[Event] | None = None
            try:
                try:
                    async with asyncio.timeout(self.settings.first_token_timeout):
                        model = await provider.resolve_model(self.chat.model)
                        self.record.provider, self.record.model = provider.name, model
                        stream = provider.stream(self.chat, model)
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
                self.record.attempts.append(Attempt(provider.name, error.code, error.message))
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
            try:
                done = await self._relay(provider, first, stream)
            except BaseException:
                await _close(stream)
                raise
            # Closed by the coordinator once ``done`` is written: closing may
            # drain the rest of the upstream body to pool its connection, and
            # the client must not wait for that.
            self._finished_upstream = stream
            return done
        assert last_error is not None
        raise last_error

    async def _relay(self, provider: Provider, first: Event, stream: AsyncIterator[Event]) -> Done:
        self._streaming = True
        if not self._streaming_started.done():
            self._streaming_started.set_result(None)
        time_now = self._loop.time
        self.last_upstream = time_now()
        await self._send_meta()
        event: Event | None = first
        iterator = aiter(stream)
        record = self.record
        send = self._send
        text_frame = frames.text_frame
        # Once per upstream read: one event (the tokens of a read are already
        # merged), one frame, one write.
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
                self._seq += 1
                await send(text_frame("token", event.text, self._seq))
                if record.first_token_at is None:
                    record.first_token_at = time.monotonic()
                record.tokens += event.count
            elif kind is Thinking:
                assert isinstance(event, Thinking)
                self._seq += 1
                await send(text_frame("thinking", event.text, self._seq))
                if record.first_token_at is None:
                    record.first_token_at = time.monotonic()
                record.thinking_tokens += event.count
            elif kind is Done:
                assert isinstance(event, Done)
                return event
            elif kind is StreamError:
                assert isinstance(event, StreamError)
                raise UpstreamError(event.message, code=event.code)
            elif kind is Skipped:
                assert isinstance(event, Skipped)
                record.skipped_lines += event.count
                log.warning(
                    "skipped upstream lines",
                    extra={
                        "stream": record.id,
                        "provider": provider.name,
                        "count": event.count,
                        "sample": event.sample,
                    },
                )
            event = None

    async def _release_upstream(self) -> None:
        """Close a finished answer's upstream, after its ``done`` frame went out.

        Closing drains the rest of the upstream body (bounded), so the
        connection goes back to the pool instead of being torn down.
        """
        stream, self._finished_upstream = self._finished_upstream, None
        if stream is not None:
            await _close(stream)

    # -- where frames go (subclasses)

    async def _commit(self) -> None:
        """Make the stream's start final before its first frame (``ChatStream``: the HTTP status)."""

    async def _send(self, data: bytes) -> None:
        raise NotImplementedError

    async def _send_meta(self) -> None:
        if self._meta_sent:
            return
        self._meta_sent = True
        await self._commit()
        self._seq += 1
        await self._send(frames.encode("meta", self._meta_data(), id=self._seq))

    def _meta_data(self) -> dict[str, Any]:
        data = {"id": self.record.id, "model": self.record.model, "provider": self.record.provider}
        data.update(self._meta_extra())
        return data

    def _meta_extra(self) -> dict[str, Any]:
        """Fields other parts of the service add to ``meta`` (e.g. flags)."""
        extra = self.record.extra.get("meta")
        return extra if isinstance(extra, dict) else {}

    def _done_data(self, done: Done) -> dict[str, Any]:
        record = self.record
        now = time.monotonic()
        completion = done.usage.completion_tokens
        if completion is None:
            completion = record.tokens + record.thinking_tokens
        generation_s = done.generation_s
        if generation_s is None and record.first_token_at is not None:
            generation_s = now - record.first_token_at
        tokens_per_s = round(completion / generation_s, 1) if generation_s else None
        return {
            "finish_reason": done.finish_reason,
            "usage": {"prompt_tokens": done.usage.prompt_tokens, "completion_tokens": completion},
            "timing": {
                "ttft_ms": record.ttft_ms,
                "total_ms": round((now - record.started) * 1000, 1),
                "tokens_per_s": tokens_per_s,
            },
            "skipped_lines": record.skipped_lines,
        }


class ClientWriter:
    """Writes to one client, each write bounded when it may block.

    Shared by ``ChatStream`` and the followers of resumable streams (a mixin,
    so the token path pays no extra call).  A write that may wait for the
    client -- its socket buffer is already behind, or this frame alone may
    fill the transport past its high-water mark -- is bounded by
    ``send_timeout``; past it the connection is aborted and the stream
    ends as ``send_timeout``.
    """

    request: web.Request
    response: web.StreamResponse
    settings: Settings
    _loop: asyncio.AbstractEventLoop
    last_write: float
    # Set when we abort the client's connection ourselves, because the abort
    # makes aiohttp cancel the handler before the cause reaches it.
    _aborted_for: SendTimeout | None

    async def _send(self, data: bytes) -> None:
        transport = self.request.transport
        if transport is None or transport.is_closing():
            raise ClientGone()
        try:
            if transport.get_write_buffer_size() or len(data) > _UNBLOCKED_WRITE:
                try:
                    async with asyncio.timeout(self.settings.send_timeout):
                        await self.response.write(data)
                except TimeoutError:
                    self._aborted_for = SendTimeout()
                    transport.abort()
                    raise self._aborted_for from None
            else:
                await self.response.write(data)
        except ConnectionError:
            raise ClientGone() from None
        self.last_write = self._loop.time()


class ChatStream(ClientWriter, Generation):
    """One ``POST /api/chat`` answered as an event stream, frames written to the client."""

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
    ) -> None:
        super().__init__(chat, router, settings, record)
        self.request = request
        self.registry = registry
        self.observers = observers
        self.response = web.StreamResponse(headers=SSE_HEADERS)
        self._committed = False
        self._commit_lock = asyncio.Lock()
        self.last_write = self._loop.time()
        self._pump_task: asyncio.Task[Done] | None = None
        self._forced: ApiError | None = None
        # Set when we abort the client's connection ourselves, because the abort
        # makes aiohttp cancel this handler before the cause reaches ``run``.
        self._aborted_for: SendTimeout | None = None

    # -- public

    def end(self, error: ApiError) -> None:
        """End the stream from outside (shutdown) with ``error`` as its terminal frame."""
        if self._forced is None and self._pump_task is not None and not self._pump_task.done():
            self._forced = error
            self._pump_task.cancel()

    async def run(self) -> web.StreamResponse:
        self.registry.add(self)
        pump = self._pump_task = asyncio.create_task(self._pump())
        watchdog = asyncio.create_task(self._watchdog())
        outcome, message = "cancelled", None
        try:
            await asyncio.wait((pump, watchdog), return_when=asyncio.FIRST_COMPLETED)
            result = self._result(pump, watchdog)
            await _stop(pump, watchdog)
            outcome, message = await self._finish(result)
            if isinstance(result, ApiError) and not self._committed:
                return web.json_response(result.body(), status=result.status, headers=result.headers())
            return self.response
        except asyncio.CancelledError:
            outcome, message = self._outcome_of(self._aborted_for or ClientGone())
            raise
        finally:
            await _stop(pump, watchdog)
            finish(self.record, outcome, self.observers, message)
            try:
                await self._release_upstream()
            finally:
                self.registry.remove(self)

    # -- the watchdog: heartbeats and the idle timeout

    async def _watchdog(self) -> ApiError:
        heartbeat = self.settings.heartbeat
        idle = self.settings.idle_timeout
        while True:
            now = self._loop.time()
            idle_at = self.last_upstream + idle if self._streaming else float("inf")
            if now >= idle_at:
                return UpstreamTimeout(f"{self.record.provider} sent nothing for {idle:g} s")
            ping_at = self.last_write + heartbeat
            if now >= ping_at:
                await self._commit()
                await self._send(PING)
                self.record.heartbeats += 1
                continue
            delay = min(ping_at, idle_at) - now
            if self._streaming_started.done():
                await asyncio.sleep(delay)
            else:
                # ``wait`` leaves the future alone when the delay runs out.
                await asyncio.wait((self._streaming_started,), timeout=delay)

    # -- writing

    async def _commit(self) -> None:
        """Send the status line and headers (once): from here on, errors are frames."""
        if self._committed:
            return
        async with self._commit_lock:
            if not self._committed:
                await self.response.prepare(self.request)
                self._committed = True

    # -- the end

    def _result(self, pump: asyncio.Task[Done], watchdog: asyncio.Task[ApiError]) -> Done | BaseException:
        """What ended the stream, given the first task to finish."""
        if pump.done():
            if pump.cancelled():
                return self._forced or ClientGone()
            exc = pump.exception()
            return exc if exc is not None else pump.result()
        if watchdog.cancelled():
            return ClientGone()
        exc = watchdog.exception()
        return exc if exc is not None else watchdog.result()

    async def _finish(self, result: Done | BaseException) -> tuple[str, str | None]:
        """Write the terminal frame for ``result``; return the outcome and a message."""
        if isinstance(result, ClientGone | SendTimeout):
            return self._outcome_of(result)
        if isinstance(result, Done):
            name, data = "done", self._done_data(result)
            outcome, message = "done", None
        else:
            if not isinstance(result, ApiError):
                log.error("stream failed", exc_info=result, extra={"stream": self.record.id})
                result = ApiError("the relay failed; the server log has details")
            if not self._committed:
                return result.code, result.message
            name, data = "error", result.frame_data()
            outcome, message = result.code, result.message
        try:
            await self._send_meta()
            self._seq += 1
            await self._send(frames.encode(name, data, id=self._seq))
            await self.response.write_eof()
        except (ClientGone, SendTimeout, ConnectionError):
            return "cancelled", None
        return outcome, message

    def _outcome_of(self, gone: ClientGone | SendTimeout) -> tuple[str, str | None]:
        """The outcome of a stream whose client can no longer be written to."""
        if isinstance(gone, SendTimeout):
            return "send_timeout", f"the client read nothing for {self.settings.send_timeout:g} s"
        return "cancelled", None


async def _stop(*tasks: asyncio.Task[Any]) -> None:
    """Cancel ``tasks`` and wait until they have really finished."""
    for task in tasks:
        task.cancel()
    for task in tasks:
        if not task.done():
            try:
                await asyncio.wait((task,))
            except asyncio.CancelledError:
                # We are being cancelled too; the tasks are cancelled and will
                # finish on their own without us.
                raise
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()  # mark retrieved: the coordinator already used it


async def _close(stream: AsyncIterator[Event]) -> None:
    aclose: Callable[[], Any] | None = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()
