"""Steps of a scripted answer that every fake upstream plays the same way.

Each fake adds its own step for its wire format (an NDJSON ``Line`` for the
fake Ollama, an SSE ``Data``/``Comment`` for the fake OpenRouter); these are
the rest: raw bytes, a gate the test opens, a pause, a dropped connection,
and silence.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiohttp import web


@dataclass
class Raw:
    """Bytes written as they are (garbage, partial lines, odd line ends)."""

    data: bytes


@dataclass
class Gate:
    """Wait until the test opens ``event`` before going on."""

    event: asyncio.Event


@dataclass
class Sleep:
    seconds: float


@dataclass
class Drop:
    """Abort the TCP connection mid-answer (no terminating chunk)."""


@dataclass
class Hang:
    """Send nothing more, forever (until the client goes away)."""


SharedStep = Raw | Gate | Sleep | Drop | Hang


async def write(response: web.StreamResponse, data: bytes, split: int | None) -> None:
    """Write ``data``, in pieces of ``split`` bytes if asked (each its own write)."""
    if not split:
        await response.write(data)
        return
    for start in range(0, len(data), split):
        await response.write(data[start : start + split])
        # Give the reader a chance to see this piece on its own.
        await asyncio.sleep(0)


async def play(step: SharedStep, response: web.StreamResponse, request: web.Request, split: int | None) -> None:
    if isinstance(step, Raw):
        await write(response, step.data, split)
    elif isinstance(step, Gate):
        await step.event.wait()
    elif isinstance(step, Sleep):
        await asyncio.sleep(step.seconds)
    elif isinstance(step, Drop):
        assert request.transport is not None
        request.transport.abort()
        raise ConnectionResetError("dropped on purpose")
    elif isinstance(step, Hang):
        await asyncio.Event().wait()
