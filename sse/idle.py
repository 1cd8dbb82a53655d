"""A signal that is set while nothing is held, and a bounded wait for it (for graceful shutdown)."""

from __future__ import annotations

import asyncio


class IdleSignal:
    """Whether something (streams, slots) is still held; ``wait`` for none within a bound."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._event.set()

    def busy(self) -> None:
        self._event.clear()

    def idle(self) -> None:
        self._event.set()

    async def wait(self, within: float) -> bool:
        """Wait until idle; False if ``within`` seconds passed first."""
        try:
            async with asyncio.timeout(within):
                await self._event.wait()
        except TimeoutError:
            return False
        return True
