"""The bench's processes: started pinned to their cores, measured through /proc.

The service gets a core of its own; the upstream and the load generator
share the other, so what the service costs is what its core spends.  CPU time
is ``utime + stime`` from ``/proc/<pid>/stat`` (every thread), memory is
``VmRSS`` from ``/proc/<pid>/status``: the standard library is enough.
"""

from __future__ import annotations

import asyncio
import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
_TICK = os.sysconf("SC_CLK_TCK")
# Enough for 10,000 streams: the service holds two sockets per stream.
WANTED_FILES = 65536


def cores() -> tuple[set[int], set[int]]:
    """(the service's core, the other processes' cores)."""
    available = sorted(os.sched_getaffinity(0))
    if len(available) < 2:
        return set(available), set(available)
    return {available[0]}, {available[1]}


def raise_fd_limit(wanted: int = WANTED_FILES) -> int:
    """Raise this process's open-file limit as far as allowed (root may raise the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for limit in (max(wanted, soft), hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, max(limit, hard)))
            break
        except (ValueError, OSError):
            continue
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Usage:
    """A process's CPU seconds (user + system) and resident memory at one instant."""

    cpu_s: float
    rss_kib: int
    at: float
    system_s: float = 0.0  # the kernel's share of cpu_s (socket calls, mostly)


def usage(pid: int) -> Usage:
    with open(f"/proc/{pid}/stat", "rb") as f:
        stat = f.read()
    fields = stat[stat.rfind(b")") + 2 :].split()
    user, system = int(fields[11]) / _TICK, int(fields[12]) / _TICK  # utime, stime
    rss = 0
    with open(f"/proc/{pid}/status", "rb") as f:
        for line in f:
            if line.startswith(b"VmRSS:"):
                rss = int(line.split()[1])
                break
    return Usage(user + system, rss, time.monotonic(), system)


class Process:
    """A child pinned to ``cpus`` with the raised file limit; its output goes to ``log``."""

    def __init__(
        self,
        args: Sequence[str],
        *,
        cpus: set[int],
        log: IO[Any],
        env: dict[str, str] | None = None,
        cwd: Path = ROOT,
    ):
        def prepare() -> None:
            os.sched_setaffinity(0, cpus)
            raise_fd_limit()

        self.popen = subprocess.Popen(
            list(args),
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            env={**os.environ, **(env or {})},
            preexec_fn=prepare,
        )
        self.pid = self.popen.pid

    def usage(self) -> Usage:
        return usage(self.pid)

    def stop(self, within: float = 10.0) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(within)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        for pipe in (self.popen.stdin, self.popen.stdout):
            if pipe is not None:
                pipe.close()


def start_upstream(cpus: set[int], log: IO[Any]) -> tuple[Process, int]:
    process = Process([sys.executable, str(ROOT / "bench" / "upstream.py")], cpus=cpus, log=log)
    assert process.popen.stdout is not None
    line = process.popen.stdout.readline().decode()
    if not line.startswith("listening "):
        process.stop()
        raise RuntimeError(f"the bench upstream did not start: {line!r}")
    return process, int(line.split()[1])


def start_service(
    upstream_port: int, cpus: set[int], log: IO[Any], extra: Sequence[str] = (), root: Path = ROOT
) -> tuple[Process, int]:
    """``python app.py`` from ``root`` (another checkout can be compared), pinned to ``cpus``."""
    port = free_port()
    args = [
        sys.executable, str(root / "app.py"),
        "--provider", "ollama",
        "--ollama-url", f"http://127.0.0.1:{upstream_port}",
        "--ollama-model", "bench",
        "--port", str(port),
        # Hundreds of streams from one address: the per-client and global
        # limits would refuse all but a few (they are measured in tests).
        "--rate-per-minute", "0", "--max-streams-per-client", "0", "--max-streams", "0",
        *extra,
    ]  # fmt: skip
    return Process(args, cpus=cpus, log=log, cwd=root), port


async def http_json(port: int, method: str, path: str, within: float = 10.0) -> tuple[int, Any]:
    """A one-off request on its own connection; (status, parsed JSON body)."""
    import json

    async with asyncio.timeout(within):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(
                f"{method} {path} HTTP/1.1\r\nHost: bench\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
            )
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            status = int(head.split(" ", 2)[1])
            lines = head.split("\r\n")
            lengths = [line.split(":", 1)[1] for line in lines if line.lower().startswith("content-length:")]
            length = int(lengths[0]) if lengths else None
            body = await (reader.readexactly(length) if length is not None else reader.read())
        finally:
            writer.close()
    return status, json.loads(body) if body else None


async def wait_healthy(port: int, process: Process, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while True:
        if process.popen.poll() is not None:
            raise RuntimeError(f"the service exited with {process.popen.returncode}; see its log")
        try:
            status, _ = await http_json(port, "GET", "/healthz", within=2.0)
            if status == 200:
                return
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the service did not answer /healthz within {within:g} s")
        await asyncio.sleep(0.05)
