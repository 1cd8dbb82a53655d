"""What a resumable stream costs the service: memory per open stream, CPU per token.

    .venv/bin/python bench/resumable.py [--streams 200] [--tokens 400] [--concurrency 20]

Runs the real service (``python app.py``) as a child process pinned to one
core with ``taskset``, in front of a lean fake Ollama in this process (pinned
to another core when there is one), and measures the service only:

* **CPU per token**: ``--concurrency`` streams at a time, ``--tokens`` tokens
  each, the upstream pacing every stream's tokens so each arrives in a read of
  its own (one frame per token, the costly case); the service's user+system
  CPU time from ``/proc/<pid>/stat`` over the run, divided by the tokens
  relayed;
* **memory per open stream**: ``--streams`` streams held open after
  ``--tokens`` tokens each (the upstream then goes silent), the growth of the
  service's resident set (``VmRSS`` in ``/proc/<pid>/status``) divided by the
  streams.

Each measure runs with ``resumable`` off and on.  In-memory store only (no
Redis): the Redis copy costs the generating instance one pipeline per burst
and Redis its own memory, which belong to a Redis benchmark.  Standard library
and aiohttp only, so it runs from the test virtualenv.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


# -- a lean fake Ollama: just enough HTTP, no framework


class LeanOllama:
    """Answers ``POST /api/chat`` with NDJSON token lines, paced and optionally held open.

    The user message says what to send: ``tokens=N delay=S hold=0|1``.
    """

    def __init__(self) -> None:
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                if method == "GET":
                    payload = {"models": [{"name": "bench"}]} if path == "/api/tags" else {"version": "0.0.0"}
                    data = json.dumps(payload).encode()
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        + f"Content-Length: {len(data)}\r\n\r\n".encode()
                        + data
                    )
                    await writer.drain()
                    continue
                await self._answer(json.loads(body), writer)
                return
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            return
        finally:
            self._tasks.discard(task)
            writer.close()

    @staticmethod
    async def _answer(request: dict, writer: asyncio.StreamWriter) -> None:
        words = dict(part.split("=") for part in request["messages"][-1]["content"].split())
        tokens, delay, hold = int(words["tokens"]), float(words["delay"]), words.get("hold") == "1"
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n")

        def chunk(obj: dict) -> bytes:
            line = json.dumps(obj, separators=(",", ":")).encode() + b"\n"
            return f"{len(line):x}\r\n".encode() + line + b"\r\n"

        for i in range(tokens):
            writer.write(
                chunk({"model": "bench", "message": {"role": "assistant", "content": f" tok{i}"}, "done": False})
            )
            await writer.drain()
            if delay:
                await asyncio.sleep(delay)
        if hold:
            await asyncio.Event().wait()  # silent until the service closes the connection
        writer.write(chunk({"model": "bench", "message": {"role": "assistant", "content": ""}, "done": True,
                            "done_reason": "stop", "eval_count": tokens, "eval_duration": 1}))  # fmt: skip
        writer.write(b"0\r\n\r\n")
        await writer.drain()


# -- the service under test


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServiceProcess:
    process: asyncio.subprocess.Process
    url: str

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 15)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


async def start_service(upstream_port: int, core: int | None) -> ServiceProcess:
    port = free_port()
    command = [sys.executable, "app.py", "--provider", "ollama", "--ollama-url", f"http://127.0.0.1:{upstream_port}",
               "--port", str(port), "--log-level", "error", "--model", "bench"]  # fmt: skip
    if core is not None and shutil.which("taskset"):
        command = ["taskset", "-c", str(core), *command]
    process = await asyncio.create_subprocess_exec(*command, cwd=ROOT, stdin=asyncio.subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            try:
                async with session.get(url + "/healthz") as response:
                    if response.status == 200:
                        return ServiceProcess(process, url)
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    await ServiceProcess(process, url).stop()
    raise RuntimeError("the service did not start")


def ask(tokens: int, delay: float, *, resumable: bool, hold: bool = False) -> dict:
    prompt = f"tokens={tokens} delay={delay} hold={int(hold)}"
    body: dict = {"messages": [{"role": "user", "content": prompt}]}
    if resumable:  # only then: a service from before resumable streams can be measured too
        body["resumable"] = True
    return body


# -- the measures


async def read_stream(session: aiohttp.ClientSession, url: str, body: dict) -> int:
    """POST and read the whole answer; the number of frames."""
    async with session.post(url + "/api/chat", json=body) as response:
        data = await response.read()
    if b"event: done" not in data:
        raise RuntimeError(f"a stream did not finish: {data[-200:]!r}")
    return data.count(b"\nid: ")


async def cpu_per_token(
    service: ServiceProcess, *, resumable: bool, tokens: int, concurrency: int, rounds: int
) -> tuple[float, float]:
    """(µs of service CPU per token, µs per frame) over ``rounds`` batches of ``concurrency`` streams."""
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        await read_stream(session, service.url, ask(10, 0, resumable=resumable))  # warm up
        before = service.cpu_seconds()
        frames = 0
        for _ in range(rounds):
            counts = await asyncio.gather(
                *(
                    read_stream(session, service.url, ask(tokens, 0.002, resumable=resumable))
                    for _ in range(concurrency)
                )
            )
            frames += sum(counts)
        used = service.cpu_seconds() - before
    total_tokens = tokens * concurrency * rounds
    return used / total_tokens * 1e6, used / frames * 1e6


async def memory_per_stream(
    service: ServiceProcess, *, resumable: bool, tokens: int, streams: int, concurrency: int
) -> tuple[float, float]:
    """Growth of the service's RSS per stream held open after ``tokens`` paced tokens (KiB), and frames per stream."""
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        # Warm up allocator pools and code paths with a few streams first.
        await asyncio.gather(
            *(read_stream(session, service.url, ask(50, 0.001, resumable=resumable)) for _ in range(5))
        )
        await asyncio.sleep(0.5)
        baseline = service.rss_bytes()
        needle = f"tok{tokens - 1}".encode()
        responses: list[aiohttp.ClientResponse] = []
        frames = 0

        async def open_one() -> None:
            nonlocal frames
            body = ask(tokens, 0.002, resumable=resumable, hold=True)
            response = await session.post(service.url + "/api/chat", json=body)
            seen = b""
            while needle not in seen[-64:]:
                chunk = await response.content.readany()
                frames += chunk.count(b"\nid: ")
                seen = seen[-64:] + chunk
            responses.append(response)

        for start in range(0, streams, concurrency):
            await asyncio.gather(*(open_one() for _ in range(min(concurrency, streams - start))))
        await asyncio.sleep(0.5)
        grown = service.rss_bytes() - baseline
        for response in responses:
            response.close()
    return grown / streams / 1024, frames / streams


async def measure(
    upstream: LeanOllama, core: int | None, args: argparse.Namespace, resumable: bool
) -> tuple[float, float, float, float]:
    """One run of both measures, each in a fresh service process (one's garbage does not weigh on the other)."""
    service = await start_service(upstream.port, core)
    try:
        cpu_token, cpu_frame = await cpu_per_token(
            service, resumable=resumable, tokens=args.tokens, concurrency=args.concurrency, rounds=args.rounds
        )
    finally:
        await service.stop()
    service = await start_service(upstream.port, core)
    try:
        memory, frames = await memory_per_stream(
            service, resumable=resumable, tokens=args.tokens, streams=args.streams, concurrency=args.concurrency
        )
    finally:
        await service.stop()
    return cpu_token, cpu_frame, memory, frames


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=200, help="streams held open for the memory measure")
    parser.add_argument("--tokens", type=int, default=400, help="tokens per stream")
    parser.add_argument("--concurrency", type=int, default=20, help="streams at a time for the CPU measure")
    parser.add_argument("--rounds", type=int, default=5, help="batches of streams for the CPU measure")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measure, off and on in turn")
    parser.add_argument("--modes", default="off,on", help="resumable off, on, or both (off,on)")
    args = parser.parse_args()
    modes = [mode.strip() == "on" for mode in args.modes.split(",")]

    cores = sorted(os.sched_getaffinity(0))
    service_core = cores[0] if len(cores) > 1 else None
    if len(cores) > 1:
        os.sched_setaffinity(0, set(cores[1:]))  # the fake upstream and the client stay off the service's core

    upstream = LeanOllama()
    await upstream.start()
    runs: dict[bool, list[tuple[float, float, float, float]]] = {mode: [] for mode in modes}
    try:
        for _ in range(args.repeat):
            for resumable in modes:
                result = await measure(upstream, service_core, args, resumable)
                runs[resumable].append(result)
                label = "on " if resumable else "off"
                print(f"  resumable {label}: {result[0]:.1f} µs/token, {result[1]:.1f} µs/frame, "
                      f"{result[2]:.1f} KiB/stream ({result[3]:.0f} frames)", file=sys.stderr)  # fmt: skip
    finally:
        await upstream.close()

    frames = statistics.median(r[3] for results in runs.values() for r in results)
    print(f"service pinned to core {service_core}; {args.tokens} tokens per stream, paced to one frame per token")
    print(f"(streams held open had {frames:.0f} frames each: the log of a resumable one holds them all)")
    print(f"CPU: {args.rounds} x {args.concurrency} concurrent streams; memory: {args.streams} streams held open")
    print(f"best CPU and median memory of {args.repeat} runs (other load on the machine only ever adds)\n")
    print("| resumable | CPU per token | CPU per frame | memory per open stream |")
    print("|---|---|---|---|")
    for resumable, results in runs.items():
        cpu_token = min(r[0] for r in results)
        cpu_frame = min(r[1] for r in results)
        memory = statistics.median(r[2] for r in results)
        print(f"| {'on' if resumable else 'off'} | {cpu_token:.1f} µs | {cpu_frame:.1f} µs | {memory:.1f} KiB |")


if __name__ == "__main__":
    started = time.monotonic()
    asyncio.run(main())
    print(f"\n({time.monotonic() - started:.0f} s)")
