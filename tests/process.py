"""Run the service as a real process (``python app.py``), for signals and start-up."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


class ServiceProcess:
    """``python app.py`` with its JSON log lines collected as they come."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.args = args
        self.env = {**os.environ, **(env or {})}
        self.proc: asyncio.subprocess.Process | None = None
        self.lines: list[dict[str, Any]] = []
        self.stderr_text: list[str] = []
        self.url = ""
        self._new_line = asyncio.Condition()
        self._reader: asyncio.Task[None] | None = None

    async def start(self, *, wait_listening: bool = True) -> ServiceProcess:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "app.py", *self.args,
            cwd=ROOT, env=self.env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        self._reader = asyncio.create_task(self._read())
        if wait_listening:
            line = await self.wait_for_line(lambda line: line.get("msg") == "listening")
            self.url = line["url"].rstrip("/")
        return self

    async def _read(self) -> None:
        assert self.proc is not None
        assert self.proc.stderr is not None
        async for raw in self.proc.stderr:
            text = raw.decode(errors="replace").rstrip("\n")
            self.stderr_text.append(text)
            try:
                line = json.loads(text)
            except ValueError:
                line = {"msg": text}
            async with self._new_line:
                self.lines.append(line)
                self._new_line.notify_all()
        async with self._new_line:
            self._new_line.notify_all()

    async def wait_for_line(self, matches: Any, within: float = 30.0) -> dict[str, Any]:
        """The first log line (seen or to come) for which ``matches(line)`` holds."""
        async with asyncio.timeout(within), self._new_line:
            while True:
                for line in self.lines:
                    if matches(line):
                        return line
                if self._reader is not None and self._reader.done():
                    raise AssertionError(f"process ended without that line: {self.stderr_text[-20:]}")
                await self._new_line.wait()

    def signal(self, signum: int = signal.SIGTERM) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    async def wait(self, within: float = 30.0) -> int:
        assert self.proc is not None
        async with asyncio.timeout(within):
            code = await self.proc.wait()
            if self._reader is not None:
                await self._reader
        return code

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        if self._reader is not None:
            await self._reader
