"""aiohttp plumbing shared by the HTTP providers (Ollama, OpenAI-compatible).

Opening an upstream stream fails in a handful of ways that every provider must
map the same way: connection refused, connect timeout, an HTTP error status
with a JSON body in the upstream's own dialect.  Reading it fails when the
connection drops.  This module does that mapping once, and makes sure a
response that is abandoned half-read closes its TCP connection instead of
going back to the pool (a pooled connection would let the model keep
generating: the upstream sees no FIN).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import email.utils
import json
import os
import re
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp

from ..errors import (
    MAX_RETRY_AFTER,
    ModelNotFound,
    UpstreamDisconnected,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
    from_upstream_status,
)
from ..routing import ModelMap
from .base import ModelInfo

ERROR_BODY_LIMIT = 64 * 1024
# After an answer's last line, what may still come before the body's end (the
# chunked terminator, a trailing newline) is read for at most this long and this
# much, so the connection can go back to the pool; past either, it is closed.
DRAIN_TIMEOUT = 1.0
DRAIN_LIMIT = 64 * 1024
# One read of an upstream body takes at most this much, and aiohttp stops
# reading the socket once this much (twice it, its high-water mark) waits
# unread.  A network read can otherwise carry up to 256 KiB, all of it held
# while a client that stopped reading blocks the stream: a stalled stream's
# upstream side costs at most about 3 x READ_BYTES, whatever the upstream sends.
READ_BYTES = 16 * 1024
# Retry-After's delay-seconds, and a fraction, which some servers send.  Not
# float()'s syntax: that takes "inf", "nan" and "1e999".
_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?")


@dataclass(frozen=True, slots=True)
class UpstreamLimits:
    """The bounds every HTTP provider keeps with its model server, from the settings.

    The wait for the first token and for each later event is bounded by the
    relay (``first_token_timeout``, ``idle_timeout``), which knows which phase
    a stream is in; these are what only a provider can bound.
    """

    connect_timeout: float = 10.0
    """Seconds to open a TCP connection; also the bound on a model list's GET."""
    max_line_bytes: int = 8 * 1024 * 1024
    """The largest upstream line (NDJSON) or event (SSE) taken; a larger one ends the stream."""


DEFAULT_LIMITS = UpstreamLimits()  # the settings' defaults, for a provider built without them (tests, scripts)


@dataclass(slots=True)
class UpstreamBody:
    """An open upstream answer, and whether its provider has read its last line.

    A provider sets ``complete`` when it has read a successful answer's end
    (Ollama's ``done`` line, OpenAI's ``[DONE]``): the connection is then worth
    draining to the end of the body and reusing.  Otherwise (an in-band error
    included, whose frame must not wait for a drain) it is closed, so a model
    that is still generating sees the close.
    """

    response: aiohttp.ClientResponse
    complete: bool = False


def make_session(*, connect_timeout: float, limit: int = 0) -> aiohttp.ClientSession:
    """The one client session a provider shares across all its streams.

    Only the TCP connect is bounded here; waiting for the first token and for
    each later byte is bounded by the relay, which knows which phase it is in
    (a model load can take minutes before the first line arrives).
    """
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=None, connect=None, sock_connect=connect_timeout, sock_read=None),
        read_bufsize=READ_BYTES,
        connector=aiohttp.TCPConnector(limit=limit, limit_per_host=limit, enable_cleanup_closed=False),
        auto_decompress=True,
        raise_for_status=False,
    )


def error_message(body: bytes) -> str:
    """Pull the human message out of an upstream's JSON error body.

    Ollama says ``{"error": "..."}``; OpenAI and OpenRouter say
    ``{"error": {"message": "...", "code": ...}}``.  Anything else is shown as
    (short) text.
    """
    try:
        data: Any = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace").strip()[:500]
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, str):
        return error
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return str(data["message"])
    return body.decode("utf-8", "replace").strip()[:500]


def _retry_after(response: aiohttp.ClientResponse) -> float | None:
    return parse_retry_after(response.headers.get("Retry-After"))


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """An upstream's ``Retry-After`` in seconds, within ``[0, MAX_RETRY_AFTER]``; None if unusable.

    RFC 9110 allows whole seconds or an HTTP-date; a fraction (``1.5``) is
    taken too.  Anything else -- ``inf``, ``nan``, ``1e300``, a word -- is
    ignored (the caller's default applies), and a huge number is capped: the
    value is passed on to our client, as a header and in the JSON body, so it
    must be a small whole number.
    """
    if value is None:
        return None
    text = value.strip()
    if _SECONDS.fullmatch(text):
        return min(float(text), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": RFC 5322's "no zone information", taken as UTC
        when = when.replace(tzinfo=datetime.UTC)
    seconds = when.timestamp() - (time.time() if now is None else now)
    return min(max(0.0, seconds), MAX_RETRY_AFTER)


async def read_limited(response: aiohttp.ClientResponse, limit: int = ERROR_BODY_LIMIT) -> bytes:
    """Read at most ``limit`` bytes of a body (error bodies can be anything)."""
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await response.content.read(limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


@asynccontextmanager
async def open_stream(
    session: aiohttp.ClientSession,
    url: str,
    payload: dict[str, Any],
    *,
    name: str,
    headers: dict[str, str] | None = None,
    on_error_status: Callable[[int, str, float | None], UpstreamError] = lambda s, m, r: from_upstream_status(
        s, m, retry_after=r
    ),
) -> AsyncIterator[UpstreamBody]:
    """POST ``payload`` and yield the streaming response once it answered 200.

    On leaving the block without having read the answer to its end (the
    client left, a timeout, an error), the connection is closed, not pooled.
    After a complete answer (``UpstreamBody.complete``), the rest of the body
    is drained, bounded, and the connection pooled.
    """
    try:
        response = await session.post(url, json=payload, headers=headers)
    except (TimeoutError, aiohttp.ServerTimeoutError):
        raise UpstreamTimeout(f"{name} did not accept a connection in time") from None
    except aiohttp.ClientConnectorError as exc:
        raise unreachable(name, url, exc) from None
    except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
        raise UpstreamDisconnected(f"{name} closed the connection before answering: {exc}") from None
    body: UpstreamBody | None = None
    try:
        if response.status != 200:
            try:
                error_body = await read_limited(response)
            except (TimeoutError, aiohttp.ClientError):
                error_body = b""
            raise on_error_status(response.status, error_message(error_body), _retry_after(response))
        _bound_socket_reads(response)
        body = UpstreamBody(response)
        yield body
    finally:
        content = response.content
        if content.is_eof() and content.exception() is None:
            response.release()
        elif body is not None and body.complete:
            await _drain(response)
        else:
            response.close()


def _bound_socket_reads(response: aiohttp.ClientResponse) -> None:
    """Make each socket read of the answer's connection at most ``READ_BYTES``.

    asyncio reads up to 256 KiB whenever a socket is readable, and aiohttp
    stops reading only once a read has taken it past its high-water mark: one
    read could put 256 KiB behind a stream whose client stopped reading.  The
    standard library's transports read at most their ``max_size``; another
    loop's transport keeps its own bound.
    """
    connection = response.connection
    transport = connection.transport if connection is not None else None
    if transport is not None and getattr(transport, "max_size", 0) > READ_BYTES:
        with contextlib.suppress(AttributeError):
            setattr(transport, "max_size", READ_BYTES)  # noqa: B010 (not a declared attribute of Transport)


async def _drain(response: aiohttp.ClientResponse) -> None:
    """Read what follows an answer's last line, then pool the connection; or close it."""
    content = response.content
    size = 0
    try:
        async with asyncio.timeout(DRAIN_TIMEOUT):
            while size <= DRAIN_LIMIT and (chunk := await content.readany()):
                size += len(chunk)
    except (TimeoutError, aiohttp.ClientError):
        pass
    finally:
        if content.is_eof() and content.exception() is None and size <= DRAIN_LIMIT:
            response.release()
        else:
            response.close()


def unreachable(name: str, url: str, exc: aiohttp.ClientError) -> UpstreamUnavailable:
    """The model server could not be reached: why, in words that name no address.

    The client is told which provider failed and how ("Connection refused");
    the model server's URL and the full cause (whose text quotes the address)
    go to the operator's log only (``log_fields``): an internal address is
    not the client's to know.
    """
    os_error = getattr(exc, "os_error", None)
    if isinstance(os_error, socket.gaierror):
        reason = "its host name does not resolve"
    elif isinstance(os_error, OSError) and os_error.errno:
        reason = os.strerror(os_error.errno)
    else:
        reason = "the connection failed"
    error = UpstreamUnavailable(f"{name} is unreachable: {reason}")
    error.log_fields.update(upstream=url, cause=str(exc))
    return error


# What a read of an upstream body raises when the connection drops.
READ_ERRORS = (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError)


def dropped(name: str, exc: BaseException) -> UpstreamDisconnected:
    return UpstreamDisconnected(f"{name} dropped the connection mid-answer: {exc}")


async def read_chunk(response: aiohttp.ClientResponse, name: str) -> bytes:
    """The next read of the body (at most ``READ_BYTES``); ``b""`` at its end.

    A plain coroutine rather than an async generator: an abandoned generator
    nested in another is only closed later by the garbage collector.
    """
    try:
        return await response.content.read(READ_BYTES)
    except READ_ERRORS as exc:
        raise dropped(name, exc) from None


class HttpProvider:
    """What the HTTP providers share: one session for all streams, bounded JSON
    GETs whose every failure is an ``UpstreamError``, and a cached model list.

    A subclass names where its models are listed and how to read that list.
    """

    models_path = "/models"
    models_ttl = 30.0  # seconds a model list is reused (readiness probes call often)
    json_limit = 4 * 1024 * 1024
    no_models = "lists no models"

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        model_map: ModelMap,
        limits: UpstreamLimits,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.model_map = model_map
        self.limits = limits
        self._headers = dict(headers or {})
        self._session: aiohttp.ClientSession | None = None
        self._models: tuple[float, list[ModelInfo]] | None = None

    def __repr__(self) -> str:  # never headers: they may carry a key
        return f"{type(self).__name__}(name={self.name!r}, base_url={self.base_url!r})"

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError(f"{type(self).__name__}.start() was not called")
        return self._session

    async def start(self) -> None:
        if self._session is None:
            self._session = make_session(connect_timeout=self.limits.connect_timeout)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def describe_error(self, status: int, body: bytes) -> str:
        """The upstream's message for an error status (a subclass may redact it)."""
        return error_message(body)

    async def get_json(self, path: str, within: float) -> Any:
        """GET a JSON document, at most ``json_limit`` bytes, within ``within`` seconds."""
        url = self.base_url + path
        try:
            async with asyncio.timeout(within), self.session.get(url, headers=self._headers) as response:
                body = await read_limited(response, self.json_limit)
        except TimeoutError:
            raise UpstreamUnavailable(f"{self.name} did not answer {path} within {within:g} s") from None
        except aiohttp.ClientError as exc:
            raise unreachable(self.name, url, exc) from None
        if response.status != 200:
            message = self.describe_error(response.status, body)
            raise UpstreamError(f"{self.name} answered {path} with HTTP {response.status}: {message}")
        try:
            return json.loads(body)
        except ValueError:
            raise UpstreamError(f"{self.name} answered {path} with something that is not JSON") from None

    def parse_models(self, data: Any) -> list[ModelInfo]:
        raise NotImplementedError

    async def models(self) -> list[ModelInfo]:
        now = time.monotonic()
        if self._models is not None and now - self._models[0] < self.models_ttl:
            return self._models[1]
        models = self.parse_models(await self.get_json(self.models_path, self.limits.connect_timeout))
        self._models = (now, models)
        return models

    async def resolve_model(self, requested: str | None) -> str:
        """The mapped name, else the configured default, else the first model listed."""
        model = self.model_map.resolve(requested)
        if model:
            return model
        models = await self.models()
        if not models:
            raise ModelNotFound(f"{self.name} {self.no_models}")
        return models[0].name
