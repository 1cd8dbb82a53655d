"""Run the service on a pseudo-terminal, as a person at a terminal runs it."""

from __future__ import annotations

import asyncio
import os
import pty
import re
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# A terminal's line discipline turns "\n" into "\r\n"; colour codes, if any, are not text.
_NOISE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]|\r")


class TerminalProcess:
    """``python app.py`` with stdout and stderr on a pty; its screen collected line by line."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.args = args
        self.env = {**os.environ, **(env or {})}
        self.env.pop("LLM_SSE_LOG_FORMAT", None)
        self.lines: list[str] = []
        self.proc: asyncio.subprocess.Process | None = None
        self._master = -1
        self._partial = ""
        self._changed = asyncio.Condition()
        self._closed = False

    async def start(self) -> TerminalProcess:
        self._master, slave = pty.openpty()
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "app.py", *self.args,
            cwd=ROOT, env=self.env, stdin=asyncio.subprocess.DEVNULL, stdout=slave, stderr=slave,
        )  # fmt: skip
        os.close(slave)
        asyncio.get_running_loop().add_reader(self._master, self._read)
        return self

    def _read(self) -> None:
        try:
            data = os.read(self._master, 65536)
        except OSError:  # EIO: the process closed the terminal
            data = b""
        if not data:
            asyncio.get_running_loop().remove_reader(self._master)
            self._closed = True
        text = self._partial + _NOISE.sub("", data.decode("utf-8", "replace"))
        *complete, self._partial = text.split("\n")
        self.lines.extend(complete)
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, pattern: str, within: float = 60.0) -> re.Match[str]:
        """The first screen line (seen or to come) that ``pattern`` matches."""
        regex = re.compile(pattern)
        async with asyncio.timeout(within), self._changed:
            while True:
                for line in self.lines:
                    match = regex.search(line)
                    if match:
                        return match
                if self._closed:
                    raise AssertionError(f"no line matching {pattern!r} in: {self.lines}")
                await self._changed.wait()

    async def stop(self) -> int:
        """SIGTERM (as Ctrl-C would), then the exit code once the screen is read to its end."""
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        return await self.wait()

    async def wait(self) -> int:
        """The exit code of a process that ends by itself, once the screen is read to its end."""
        assert self.proc is not None
        async with asyncio.timeout(30):
            code = await self.proc.wait()
            async with self._changed:
                while not self._closed:
                    await self._changed.wait()
        os.close(self._master)
        return code
