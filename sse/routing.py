"""Which provider to try first: an ordered list with a simple circuit breaker.

Providers are tried in their configured order.  One that failed in a way that
allows fallback (unreachable, timeout before the first token, 429, 5xx) is
skipped for ``cooldown`` seconds, so a dead Ollama does not add a connect
timeout to every request.  If every provider is cooling down, all are tried
anyway, in order: refusing service outright would be worse than trying.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

P = TypeVar("P")


class ProviderRouter(Generic[P]):
    def __init__(
        self,
        providers: Sequence[P],
        *,
        cooldown: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not providers:
            raise ValueError("at least one provider is needed")
        self.providers = list(providers)
        self.cooldown = cooldown
        self._clock = clock
        self._resting_until: dict[int, float] = {}

    def candidates(self) -> list[P]:
        """The providers to try for one request, in order."""
        now = self._clock()
        ready = [p for p in self.providers if self._resting_until.get(id(p), 0.0) <= now]
        return ready or list(self.providers)

    def failed(self, provider: P) -> None:
        if self.cooldown > 0:
            self._resting_until[id(provider)] = self._clock() + self.cooldown

    def succeeded(self, provider: P) -> None:
        self._resting_until.pop(id(provider), None)

    def resting(self, provider: P) -> bool:
        return self._resting_until.get(id(provider), 0.0) > self._clock()


class ModelMap:
    """How one provider names the model a request asks for.

    With fallback, one request may be answered by providers that name the
    same model differently (Ollama's ``llama3.2`` is OpenRouter's
    ``meta-llama/llama-3.2-3b-instruct``).  Each provider has an optional
    mapping, written ``requested=provider_model,...``, where ``*`` stands for
    any name not listed, and an optional default model of its own.

    Resolution, in order: a request that names a model gets its mapped name
    (or ``*``'s, or the name itself); a request that names none gets the
    provider's own default, else the service-wide default mapped the same way;
    ``None`` means "whatever the provider lists first".
    """

    def __init__(self, mapping: dict[str, str] | None = None, *, default: str = "", fallback_default: str = "") -> None:
        self.mapping = dict(mapping or {})
        self.default = default
        self.fallback_default = fallback_default

    @staticmethod
    def parse(text: str, *, setting: str = "model mapping") -> dict[str, str]:
        """Parse ``requested=provider_model,...``; a malformed entry names itself."""
        mapping: dict[str, str] = {}
        for entry in text.split(","):
            entry = entry.strip()
            if not entry:
                continue
            requested, equals, target = (part.strip() for part in entry.partition("="))
            if not equals or not requested or not target:
                raise ValueError(f"{setting}: {entry!r} is not of the form requested=provider_model")
            if requested in mapping:
                raise ValueError(f"{setting}: {requested!r} is mapped twice")
            mapping[requested] = target
        return mapping

    def resolve(self, requested: str | None) -> str | None:
        """The provider's name for ``requested`` (``None``: the provider's first model)."""
        if not requested:
            if self.default:
                return self.default
            requested = self.fallback_default
            if not requested:
                return None
        return self.mapping.get(requested) or self.mapping.get("*") or requested
