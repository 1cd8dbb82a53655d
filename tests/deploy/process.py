"""Run the real service as a separate process (``python app.py ...``), as systemd does.

Signals, exit codes and the systemd notifications only exist for a real
process.  Its JSON log lines (stderr) are collected as they come, so a test
can await a particular line instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tests.deploy.nginx import REPO

START_TIMEOUT = 30.0
LogLine = dict[str, Any]


@dataclass
class AppProcess:
    process: asyncio.subprocess.Process
    lines: list[LogLine] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)
    url: str = ""
    _new_line: asyncio.Event = field(default_factory=asyncio.Event)
    _reader: asyncio.Task[None] | None = None

    async def wait_log(self, matches: Callable[[LogLine], bool], within: float = 10.0) -> LogLine:
        """The first log line (already seen or still to come) for which ``matches`` is true."""
        seen = 0
        async with asyncio.timeout(within):
            while True:
                for line in self.lines[seen:]:
                    if matches(line):
                        return line
                seen = len(self.lines)
                if self._reader is not None and self._reader.done():
                    raise AssertionError("the service exited without that log line:\n" + "\n".join(self.raw))
                self._new_line.clear()
                await self._new_line.wait()

    def terminate(self) -> None:
        self.process.send_signal(signal.SIGTERM)

    async def wait_exit(self, within: float = 30.0) -> int:
        async with asyncio.timeout(within):
            return await self.process.wait()

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader


def clean_environ(extra: Mapping[str, str]) -> dict[str, str]:
    """This environment without the service's settings or systemd's, plus ``extra``."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("LLM_SSE_") and k not in ("OLLAMA_URL", "NOTIFY_SOCKET")
    }
    env.update(extra)
    return env


async def start_app(args: Sequence[str], env: Mapping[str, str] | None = None, *, wait: bool = True) -> AppProcess:
    """Start ``python app.py --host 127.0.0.1 --port 0 <args>``.

    With ``wait``, return once its "listening" line names the port.
    """
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(REPO / "app.py"),
        "--host", "127.0.0.1", "--port", "0",
        *args,
        cwd=REPO,
        env=clean_environ(env or {}),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    app = AppProcess(process)
    app._reader = asyncio.create_task(_pump(app, process.stderr))
    if wait:
        try:
            line = await app.wait_log(lambda line: line.get("msg") == "listening", within=START_TIMEOUT)
        except BaseException:
            await app.stop()
            raise
        app.url = str(line["url"]).rstrip("/")
    return app


async def start_instance(
    ollama_url: str, *args: str, env: Mapping[str, str] | None = None, wait: bool = True
) -> AppProcess:
    """Start the service as its own process, answering from the Ollama at ``ollama_url``; ``args`` add flags."""
    return await start_app(["--provider", "ollama", "--ollama-url", ollama_url, *args], env, wait=wait)


async def _pump(app: AppProcess, stream: asyncio.StreamReader) -> None:
    """Collect log lines, waking every waiter after each one."""
    while raw := await stream.readline():
        text = raw.decode(errors="replace").rstrip()
        app.raw.append(text)
        try:
            line = json.loads(text)
        except ValueError:
            line = {"msg": text}
        app.lines.append(line if isinstance(line, dict) else {"msg": text})
        app._new_line.set()
    app._new_line.set()
