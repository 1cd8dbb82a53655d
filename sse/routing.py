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
