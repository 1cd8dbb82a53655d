"""A real redis-server for the tests: loopback, a free port, no persistence, a temporary folder."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import tempfile
from pathlib import Path

import pytest

REDIS_SERVER = "/usr/bin/redis-server"
START_TIMEOUT = 15.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """``redis-server`` as a child process; ``url`` once it accepts connections."""

    def __init__(self) -> None:
        self.url = ""
        self.port = 0
        self.output: list[str] = []
        self._process: asyncio.subprocess.Process | None = None
        self._folder = Path(tempfile.mkdtemp(prefix="llm-sse-redis-"))
        self._drain: asyncio.Task[None] | None = None

    async def start(self) -> RedisServer:
        for _ in range(3):
            self.port = _free_port()
            if await self._launch():
                self.url = f"redis://127.0.0.1:{self.port}/0"
                return self
        raise RuntimeError("redis-server could not bind a free loopback port three times:\n" + "\n".join(self.output))

    async def _launch(self) -> bool:
        self._process = await asyncio.create_subprocess_exec(
            REDIS_SERVER,
            "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", str(self._folder),
            "--protected-mode", "yes", "--loglevel", "notice",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        assert self._process.stdout is not None
        try:
            async with asyncio.timeout(START_TIMEOUT):
                while raw := await self._process.stdout.readline():
                    line = raw.decode(errors="replace").rstrip()
                    self.output.append(line)
                    if "Ready to accept connections" in line:
                        self._drain = asyncio.create_task(self._keep_reading(self._process.stdout))
                        return True
        except TimeoutError:
            pass
        await self._kill()
        if any("Address already in use" in line for line in self.output):
            return False
        raise RuntimeError("redis-server did not start:\n" + "\n".join(self.output))

    async def _keep_reading(self, stream: asyncio.StreamReader) -> None:
        while raw := await stream.readline():
            self.output.append(raw.decode(errors="replace").rstrip())

    async def _kill(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.kill()
            await self._process.wait()

    async def stop(self) -> None:
        await self._kill()
        if self._drain is not None:
            await self._drain
        shutil.rmtree(self._folder, ignore_errors=True)


def require_redis_server() -> None:
    """redis-server is a real part of the suite: CI installs it (`make system-deps`), so there it must exist."""
    if not Path(REDIS_SERVER).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{REDIS_SERVER} is missing; `make system-deps` installs it")
        pytest.skip(f"{REDIS_SERVER} is not installed (apt-get install redis-server); the Redis tests need it")
