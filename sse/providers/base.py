"""What a provider is: the one interface between the relay and a model server.

A provider turns a validated ``ChatRequest`` into an async iterator of typed
events (``sse.events``).  Failures before the first event are raised as
``UpstreamError`` subclasses (so the client can get a proper HTTP status, and
the relay can try the next provider); failures the upstream reports in-band
later are yielded as ``StreamError`` events.  Leaving the iterator early (the
client went away) must close the upstream request at once: that is what makes
Stop stop the GPU.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..chat import ChatRequest
from ..errors import StartupError
from ..events import Event

__all__ = ["ModelInfo", "Provider", "Readiness", "StartupError"]


def token_count(value: Any) -> int | None:
    """A token count from an upstream's JSON: an integer (not a bool), else unknown."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One model a provider offers, as ``GET /api/models`` lists it."""

    name: str
    provider: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Readiness:
    """Whether a provider can serve now, and if not, why."""

    ready: bool
    detail: str


class Provider(Protocol):
    """A model server the relay can stream from."""

    name: str
    """Short name shown in ``meta`` frames, logs and metrics (e.g. ``ollama``)."""

    async def start(self) -> None:
        """Open connections or load weights; called once at application start-up.

        Raises ``StartupError`` when the provider can never serve as configured
        (e.g. the built-in model is not installed).
        """

    async def close(self) -> None:
        """Release everything ``start`` acquired."""

    async def resolve_model(self, requested: str | None) -> str:
        """The model that will answer a request asking for ``requested``."""

    def stream(self, request: ChatRequest, model: str) -> AsyncIterator[Event]:
        """Stream the answer; closing the iterator early closes the upstream."""

    async def models(self) -> list[ModelInfo]:
        """The models this provider offers."""

    async def readiness(self) -> Readiness:
        """Can this provider serve a request now?"""
