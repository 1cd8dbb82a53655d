"""One client's event stream: headers, a late status, bounded writes, pings, the end.

``EventStreamWriter`` is the one object every stream writes through -- the
direct chat stream and each follower of a resumable one, whatever the wire
protocol (the encoder gives the content type, headers and heartbeat bytes).

* **Late status.** ``commit`` sends the status line and headers once, when
  there is something to send (the first event or heartbeat), so an upstream
  that fails fast still gets the client a real status and a JSON error.
* **Bounded send.** A write that may wait for the client -- its socket buffer
  is already behind, or this frame alone may fill the transport past its
  high-water mark -- is bounded by ``send_timeout``; past it the connection
  is aborted and ``SendTimeout`` raised.  A small write into an empty buffer
  cannot block, so the common token write arms no timer.
* ``ping`` commits and writes the heartbeat; ``close`` ends the body.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from aiohttp import web

from ..encoders import native
from ..encoders.base import Encoder
from ..errors import ApiError

# A write of at most this many bytes into an empty transport buffer cannot
# block: asyncio pauses writing only above the high-water mark (see below),
# so the common small-token write skips the timeout's timer.
_UNBLOCKED_WRITE = 16 * 1024
# The transport's high-water mark for a stream.  aiohttp waits for the
# transport only after every 64 KiB it writes, and then only if the transport
# is above this mark: with asyncio's default (64 KiB) a client that stopped
# reading held up to 128 KiB here, with this one at most 80 KiB and a frame.
WRITE_HIGH_WATER = _UNBLOCKED_WRITE


class ClientGone(Exception):
    """The client closed its connection (Stop, a closed tab, a network drop)."""


class SendTimeout(Exception):
    """The client stopped reading; a write waited longer than ``send_timeout``."""


class EventStreamWriter:
    """Writes one event stream to one client (aiohttp-sse's ``EventSourceResponse`` in spirit)."""

    def __init__(
        self,
        request: web.Request,
        *,
        send_timeout: float,
        content_type: str = native.CONTENT_TYPE,
        headers: Mapping[str, str] = native.HEADERS,
        heartbeat: bytes = native.PING,
    ) -> None:
        self.request = request
        self.response = web.StreamResponse(headers={"Content-Type": content_type, **headers})
        self.send_timeout = send_timeout
        self.heartbeat = heartbeat
        self.committed = False
        self.pings = 0
        self._commit_lock = asyncio.Lock()
        self._loop = asyncio.get_running_loop()
        self.last_write = self._loop.time()
        # Set when we abort the client's connection ourselves: the abort makes
        # aiohttp cancel the handler before the cause reaches it.
        self.aborted_for: SendTimeout | None = None

    @classmethod
    def for_encoder(cls, request: web.Request, encoder: Encoder, *, send_timeout: float) -> EventStreamWriter:
        return cls(
            request,
            send_timeout=send_timeout,
            content_type=encoder.content_type,
            headers=encoder.headers,
            heartbeat=encoder.heartbeat(),
        )

    async def commit(self) -> None:
        """Send the status line and headers (once): from here on, errors are frames."""
        if self.committed:
            return
        async with self._commit_lock:
            if not self.committed:
                await self.response.prepare(self.request)
                self.committed = True
                transport = self.request.transport
                if transport is not None:
                    transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)

    async def send(self, data: bytes) -> None:
        """Write ``data``; ``ClientGone`` if the client left, ``SendTimeout`` if it stopped reading."""
        transport = self.request.transport
        if transport is None or transport.is_closing():
            raise ClientGone()
        try:
            if transport.get_write_buffer_size() or len(data) > _UNBLOCKED_WRITE:
                try:
                    async with asyncio.timeout(self.send_timeout):
                        await self.response.write(data)
                except TimeoutError:
                    # Kept without a traceback: one would hold this stream's frames
                    # (and its last read) alive in a cycle with this writer.
                    self.aborted_for = SendTimeout()
                    transport.abort()
                    raise SendTimeout() from None
            else:
                await self.response.write(data)
        except ConnectionError:
            raise ClientGone() from None
        self.last_write = self._loop.time()

    async def ping(self) -> None:
        """The heartbeat: commits the status if need be (a model still loading is not an error)."""
        await self.commit()
        await self.send(self.heartbeat)
        self.pings += 1

    async def close(self) -> None:
        """End the body (after the terminal event)."""
        await self.commit()
        await self.response.write_eof()

    def gone(self) -> ClientGone | SendTimeout:
        """Why the handler was cancelled: the client left, or we aborted it for not reading."""
        return self.aborted_for or ClientGone()


def error_response(encoder: Encoder, error: ApiError) -> web.Response:
    """An error before the stream started: its status and the protocol's JSON body."""
    status, body = encoder.error_response(error)
    headers = {"Content-Type": "application/json; charset=utf-8", **error.headers()}
    return web.Response(body=body, status=status, headers=headers)
