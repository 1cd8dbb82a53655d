"""A stream's task shape: a pump and its watchdogs, and whichever ends first ends the others.

Every stream runs this shape (sse-starlette's task group is the model): the
direct chat stream (pump: the generation writing to the client; watchdog:
heartbeats and the idle timeout), a resumable stream's generation (pump: the
generation writing to its frame log; watchdog: the idle timeout) and each
follower of one (pump: frames from the log to the client; watchdog:
heartbeats).  ``Race.result`` waits for the first task to end, stops the
others, and only then returns what ended it, so the coordinator writes the
terminal event after every sibling has stopped: nothing can follow it.

``Race.end(reason)`` ends the race from outside (shutdown, a cancel, the
grace timer): it cancels the pump, which closes its upstream at once, and
``reason`` becomes the result.  A disconnect cancels the coordinator itself;
its ``finally`` calls ``stop``.

``watchdog`` is the one watchdog: heartbeats towards a client (``writer``)
and the upstream's idle timeout (``upstream``), either or both, on one timer
per interval and none per token.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from ..errors import ApiError
from .writer import ClientGone, EventStreamWriter, SendTimeout

T = TypeVar("T")


class Race(Generic[T]):
    """A pump and its watchdogs as sibling tasks, started at once."""

    __slots__ = ("pump", "reason", "watchdogs")

    def __init__(self, pump: Coroutine[Any, Any, T], *watchdogs: Coroutine[Any, Any, Any]) -> None:
        self.pump: asyncio.Task[T] = asyncio.create_task(pump)
        self.watchdogs = tuple(asyncio.create_task(watchdog) for watchdog in watchdogs)
        self.reason: BaseException | None = None

    def end(self, reason: BaseException) -> bool:
        """End the race from outside with ``reason`` as its result; False if it had ended already."""
        if self.reason is not None or self.pump.done():
            return False
        self.reason = reason
        self.pump.cancel()
        return True

    async def result(self, cancelled: Callable[[], BaseException]) -> T | BaseException:
        """What ended the race -- the pump's value, a watchdog's value, or an exception.

        A task cancelled without a reason (never by ``end``) stands for ``cancelled()``.
        """
        await asyncio.wait((self.pump, *self.watchdogs), return_when=asyncio.FIRST_COMPLETED)
        first: asyncio.Task[Any] = self.pump
        if not first.done():
            first = next(task for task in self.watchdogs if task.done())
        await self.stop()
        if first.cancelled():
            return self.reason or cancelled()
        exc = first.exception()
        return exc if exc is not None else first.result()

    def drop_tracebacks(self) -> None:
        """Unlink what the tasks raised from the frames it was raised in, once the ending has been logged.

        A finished task keeps its exception, the exception its traceback, the
        traceback the task's frames, and those frames the objects that keep the
        task: a cycle that refcounting cannot free.  Every stream a client left
        or stopped reading would otherwise wait for a full collection with its
        buffers (about 80 objects a stream; a burst of them grew the process
        until the collector ran).
        """
        for task in (self.pump, *self.watchdogs):
            if task.done() and not task.cancelled():
                _unlink(task.exception())

    async def stop(self) -> None:
        """Cancel every task and wait until each has really finished."""
        tasks = (self.pump, *self.watchdogs)
        for task in tasks:
            task.cancel()
        for task in tasks:
            if not task.done():
                # If we are cancelled too, the tasks are cancelled and finish on their own.
                await asyncio.wait((task,))
        for task in tasks:
            if task.done() and not task.cancelled():
                task.exception()  # mark retrieved: the coordinator already used it


def _unlink(exc: BaseException | None) -> None:
    """Clear the tracebacks of ``exc`` and of the exceptions it was raised during."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        exc.__traceback__ = None
        exc = exc.__context__ or exc.__cause__


class Upstream(Protocol):
    """What the idle watchdog reads of a generation."""

    streaming: bool  # a provider has produced its first event
    last_upstream: float  # loop time of the upstream's last event

    @property
    def first_event(self) -> asyncio.Future[None]:
        """Resolved when ``streaming`` turns True: the idle deadline starts then."""

    def idle_error(self) -> ApiError: ...


async def watchdog(
    *,
    writer: EventStreamWriter | None = None,
    heartbeat: float = 0.0,
    upstream: Upstream | None = None,
    idle_timeout: float = 0.0,
) -> ApiError:
    """Ping ``writer`` after ``heartbeat`` s of silence; return the idle error after ``idle_timeout`` s.

    Sleeps until the nearer deadline, and wakes when the upstream's first
    event arrives (which starts the idle deadline).  A failed ping raises
    ``ClientGone`` or ``SendTimeout``, which ends the race like any result.
    """
    loop = asyncio.get_running_loop()
    inf = float("inf")
    while True:
        now = loop.time()
        idle_at = upstream.last_upstream + idle_timeout if upstream is not None and upstream.streaming else inf
        if now >= idle_at:
            assert upstream is not None
            return upstream.idle_error()
        ping_at = writer.last_write + heartbeat if writer is not None else inf
        if now >= ping_at:
            assert writer is not None
            await writer.ping()
            continue
        delay = min(ping_at, idle_at) - now
        if upstream is not None and not upstream.first_event.done():
            # ``wait`` leaves the future alone when the delay runs out.
            await asyncio.wait((upstream.first_event,), timeout=None if delay == inf else delay)
        else:
            await asyncio.sleep(delay)


@dataclass(frozen=True, slots=True)
class Ending:
    """How a stream (or a follower) ended: its outcome for the log and metrics.

    ``error`` is the terminal error, when there is one to report: the
    coordinator answers it with a status and JSON if nothing was committed.
    """

    outcome: str
    message: str | None = None
    error: ApiError | None = None


def gone(reason: ClientGone | SendTimeout, send_timeout: float) -> Ending:
    """The ending of a stream whose client can no longer be written to."""
    if isinstance(reason, SendTimeout):
        return Ending("send_timeout", f"the client read nothing for {send_timeout:g} s")
    return Ending("cancelled")
