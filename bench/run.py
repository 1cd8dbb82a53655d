"""Run the benchmark: ``python bench/run.py`` (or ``make bench``); see bench/README.md.

Three processes on loopback: the bench upstream (a lean fake Ollama,
bench/upstream.py), the service (``python app.py``, a fresh one per scenario)
and this one, the load generator.  The service is pinned to one core, the
upstream and the load generator to the other.  Every scenario runs twice:
``direct`` (the load generator reads the upstream itself: the ceiling) and
``relay`` (through the service).  Results are printed as a table and written
as JSON to bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import report
from bench.loadgen import Load, StreamClient, Target, Totals
from bench.procs import (
    ROOT,
    Process,
    cores,
    http_json,
    raise_fd_limit,
    start_service,
    start_upstream,
    usage,
    wait_healthy,
)
from sse.heap import CHECK_EVERY, TRIM_INTERVAL


@dataclass
class Scale:
    """How big each scenario is.  ``full`` is the benchmark; ``smoke`` proves the harness works."""

    fixed_streams: int = 200
    fixed_interval_ms: float = 5.0
    fixed_tokens: int = 500  # per stream; a finished stream is replaced at once
    fixed_warmup_s: float = 2.0
    fixed_window_s: float = 6.0
    max_streams: int = 64
    max_tokens: int = 20000
    max_warmup_s: float = 1.0
    max_window_s: float = 5.0
    memory_counts: tuple[int, ...] = (1000, 10000)
    memory_interval_ms: float = 2000.0
    memory_settle_s: float = 1.0
    cancel_streams: int = 200
    cancel_spacing_ms: float = 5.0
    cancel_grace_s: float = 2.0
    stalled_streams: int = 200
    stalled_token_bytes: int = 2000
    stalled_send_timeout_s: float = 5.0
    stalled_waves: int = 3
    # After a wave has ended: the service gives its memory back within a trim interval (sse/heap.py).
    stalled_settle_s: float = TRIM_INTERVAL + 2 * CHECK_EVERY


SCALES = {
    "full": Scale(),
    "smoke": Scale(
        fixed_streams=8,
        fixed_tokens=40,
        fixed_warmup_s=0.1,
        fixed_window_s=0.3,
        max_streams=4,
        max_tokens=2000,
        max_warmup_s=0.1,
        max_window_s=0.2,
        memory_counts=(20,),
        memory_interval_ms=200.0,
        memory_settle_s=0.1,
        cancel_streams=6,
        cancel_spacing_ms=2.0,
        cancel_grace_s=0.5,
        stalled_streams=6,
        stalled_send_timeout_s=1.0,
        stalled_waves=2,
        stalled_settle_s=0.3,
    ),
}
SCENARIOS = ("fixed", "max", "memory", "cancel", "stalled")


@dataclass
class Bench:
    scale: Scale
    upstream: Process
    upstream_port: int
    service_cpus: set[int]
    harness_cpus: set[int]
    logs: Path
    service_args: list[str] = field(default_factory=list)
    profile: Path | None = None
    service_root: Path = ROOT

    async def with_target(self, mode: str, name: str, body: Callable[[Target, Process | None], Awaitable[Any]]) -> Any:
        """Run ``body`` against the upstream (direct) or a fresh, pinned service (relay)."""
        await self.upstream_idle()
        if mode == "direct":
            return await body(Target("direct", "127.0.0.1", self.upstream_port), None)
        # Opening a local file, before the service starts: nothing is measured yet.
        with open(self.logs / f"service-{name}.log", "ab") as log:  # noqa: ASYNC230
            extra = [*self.service_args, *self.scenario_args(name)]
            service, port = start_service(self.upstream_port, self.service_cpus, log, extra, self.service_root)
            profiler = None
            try:
                await wait_healthy(port, service)
                if self.profile is not None:
                    profiler = start_profiler(service.pid, self.profile / f"{name}.txt")
                return await body(Target("relay", "127.0.0.1", port), service)
            finally:
                if profiler is not None:
                    profiler.send_signal(signal.SIGINT)
                    profiler.wait(30)
                service.stop()

    def scenario_args(self, name: str) -> list[str]:
        """Flags one scenario needs (the stalled clients' send timeout, so later waves can follow)."""
        if name == "stalled":
            return ["--send-timeout", f"{self.scale.stalled_send_timeout_s:g}"]
        return []

    async def generations(self) -> dict[str, Any]:
        _, data = await http_json(self.upstream_port, "GET", "/bench/generations")
        return dict(data)

    async def upstream_idle(self, within: float = 10.0) -> int:
        """Wait until the upstream runs no generation; forget finished ones.  Returns those left."""
        deadline = time.monotonic() + within
        # Another process's state: polled, there is no event to await.
        while (active := (await self.generations())["active"]) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        await http_json(self.upstream_port, "POST", "/bench/reset")
        return int(active)

    def harness_cpu(self) -> float:
        return usage(os.getpid()).cpu_s + self.upstream.usage().cpu_s


# -- scenarios: each returns a dict of figures


async def fixed_load(bench: Bench, target: Target, service: Process | None) -> dict[str, Any]:
    """CPU per token and latency at a fixed offered load: N streams, one token every T ms each."""
    s = bench.scale
    totals = Totals()
    load = Load(target, totals, prefix="f")
    await load.keep(s.fixed_streams, s.fixed_tokens, s.fixed_interval_ms, "stamp")
    await asyncio.sleep(s.fixed_warmup_s)
    before = service.usage() if service else usage(os.getpid())
    harness_before, tokens_before = bench.harness_cpu(), totals.tokens
    totals.recording = True
    await asyncio.sleep(s.fixed_window_s)
    totals.recording = False
    after = service.usage() if service else usage(os.getpid())
    harness_after, tokens = bench.harness_cpu(), totals.tokens - tokens_before
    upstream = await bench.generations()
    await load.stop()
    window = after.at - before.at
    cpu = after.cpu_s - before.cpu_s
    return {
        "streams": s.fixed_streams,
        "interval_ms": s.fixed_interval_ms,
        "tokens_per_stream": s.fixed_tokens,
        "window_s": round(window, 3),
        "offered_tokens_per_s": round(s.fixed_streams * 1000 / s.fixed_interval_ms),
        "tokens_per_s": round(tokens / window),
        "cpu_us_per_token": round(cpu * 1e6 / tokens, 2) if tokens else None,
        "system_us_per_token": round((after.system_s - before.system_s) * 1e6 / tokens, 2) if tokens else None,
        "cpu_percent": round(cpu * 100 / window, 1),
        "cpu_of": "service" if service else "load generator",
        "harness_cpu_percent": round((harness_after - harness_before) * 100 / window, 1),
        "latency_ms": report.percentiles(totals.latencies_ns),
        "upstream_generations": len(upstream["generations"]),
        "upstream_connections": upstream["connections"],
        "streams_done": totals.streams_done,
        "streams_failed": totals.streams_failed,
        "failures": totals.failures,
    }


async def max_rate(bench: Bench, target: Target, service: Process | None) -> dict[str, Any]:
    """Tokens per second when the upstream sends as fast as the reader takes them."""
    s = bench.scale
    totals = Totals()
    load = Load(target, totals, prefix="m")
    await load.keep(s.max_streams, s.max_tokens, 0, "fast")
    await asyncio.sleep(s.max_warmup_s)
    before = service.usage() if service else None
    start, tokens_before = time.monotonic(), totals.tokens
    await asyncio.sleep(s.max_window_s)
    window, tokens = time.monotonic() - start, totals.tokens - tokens_before
    after = service.usage() if service else None
    upstream = await bench.generations()
    await load.stop()
    figures: dict[str, Any] = {
        "streams": s.max_streams,
        "tokens_per_stream": s.max_tokens,
        "window_s": round(window, 3),
        "tokens_per_s": round(tokens / window),
        "streams_done": totals.streams_done,
        "streams_failed": totals.streams_failed,
        "failures": totals.failures,
        "upstream_generations": len(upstream["generations"]),
        "upstream_connections": upstream["connections"],
    }
    if before and after:
        cpu = after.cpu_s - before.cpu_s
        figures["cpu_percent"] = round(cpu * 100 / window, 1)
        figures["cpu_us_per_token"] = round(cpu * 1e6 / tokens, 2) if tokens else None
        figures["system_us_per_token"] = round((after.system_s - before.system_s) * 1e6 / tokens, 2) if tokens else None
    return figures


async def warm_idle_rss(target: Target, service: Process, totals: Totals) -> int:
    """The service's idle RSS, read after a few short streams warmed its code paths (imports, pools, caches)."""
    warm = Load(target, totals, prefix="w")
    clients = [await warm.open_stream(5, 1, "stamp") for _ in range(4)]
    await wait_ended(clients, 10.0)
    await asyncio.sleep(0.3)
    return service.usage().rss_kib


async def memory(bench: Bench, target: Target, service: Process | None) -> dict[str, Any]:
    """Service RSS per open slow stream: (RSS with N open - RSS idle) / N."""
    s = bench.scale
    if service is None:
        return {"skipped": "measured on the service only"}
    totals = Totals()
    idle = await warm_idle_rss(target, service, totals)
    figures: dict[str, Any] = {"idle_rss_kib": idle, "interval_ms": s.memory_interval_ms, "open": []}
    for asked in s.memory_counts:
        # The service holds two sockets per stream; when the open-file limit
        # (which only a privileged process may raise) does not allow ``asked``,
        # measure the most that fits, in thousands.
        files = min(open_files_limit(service.pid), open_files_limit(os.getpid()))
        count = asked if files >= 2 * asked + 256 else (files - 256) // 2 // 1000 * 1000
        if count <= 0:
            figures["open"].append({"streams": asked, "skipped": f"open-file limit {files} is too low"})
            continue
        load = Load(target, totals, prefix=f"r{count}-", connect_concurrency=128)
        started = time.monotonic()
        clients = list(
            await asyncio.gather(*(load.open_stream(10**6, s.memory_interval_ms, "stamp") for _ in range(count)))
        )
        await asyncio.wait_for(asyncio.gather(*(c.first_token for c in clients)), 60 + count / 100)
        opened_s = time.monotonic() - started
        await asyncio.sleep(s.memory_settle_s)
        streaming = sum(1 for c in clients if c.tokens and not c.ended)
        rss = service.usage().rss_kib
        await load.stop()
        left = await bench.upstream_idle(30.0)
        figures["open"].append(
            {
                "streams": count,
                **({"asked": asked, "open_files_limit": files} if count != asked else {}),
                "streaming": streaming,
                "rss_kib": rss,
                "kib_per_stream": round((rss - idle) / count, 2),
                "open_s": round(opened_s, 2),
                "upstream_left_running": left,
            }
        )
    figures["streams_failed"] = totals.streams_failed
    figures["failures"] = totals.failures
    return figures


async def cancel(bench: Bench, target: Target, service: Process | None) -> dict[str, Any]:
    """Client abort -> upstream sees the close, while streaming and while silent."""
    s = bench.scale
    figures: dict[str, Any] = {"streams": s.cancel_streams, "spacing_ms": s.cancel_spacing_ms}
    for phase, mode in (("streaming", "stamp"), ("silent", "silent")):
        totals = Totals()
        load = Load(target, totals, prefix=f"c{phase[0]}")
        clients = list(await asyncio.gather(*(load.open_stream(10**6, 5, mode) for _ in range(s.cancel_streams))))
        if mode == "stamp":
            await asyncio.wait_for(asyncio.gather(*(c.first_token for c in clients)), 30)
        else:
            await wait_for_upstream(bench, s.cancel_streams, 30)
        aborted: dict[str, int] = {}
        for client in clients:
            aborted[client.ident] = client.abort()
            await asyncio.sleep(s.cancel_spacing_ms / 1000)
        deadline = time.monotonic() + s.cancel_grace_s
        while (await bench.generations())["active"] and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        records = {r[0]: r for r in (await bench.generations())["generations"]}
        lags = [records[i][3] - at for i, at in aborted.items() if i in records and records[i][3] is not None]
        running = sum(1 for i in aborted if i not in records or records[i][3] is None)
        figures[phase] = {
            "aborted": len(aborted),
            "closed": len(lags),
            "left_running": running,
            "lag_ms": report.percentiles(lags),
            "streams_failed": totals.streams_failed,
            "failures": totals.failures,
        }
        await bench.upstream_idle()
    return figures


async def stalled(bench: Bench, target: Target, service: Process | None) -> dict[str, Any]:
    """Service RSS per client that stopped reading, while the upstream floods large tokens; then more waves.

    Each client sends its request and never reads; the upstream sends
    ``stalled_token_bytes``-byte tokens as fast as the service takes them.
    RSS is sampled from the first request until the service's
    ``send_timeout`` has ended every stream, and its peak is the wave's
    figure: on loopback a stalled stream's buffers fill in bursts (the
    upstream's link waits on TCP's zero-window probes), so one reading at
    an arbitrary moment can miss them.  Each later wave does the same: a
    service that frees what a wave held does not grow.
    """
    s = bench.scale
    if service is None:
        return {"skipped": "measured on the service only"}
    totals = Totals()
    idle = await warm_idle_rss(target, service, totals)
    pressures = tcp_memory_pressures()
    figures: dict[str, Any] = {
        "streams": s.stalled_streams,
        "token_bytes": s.stalled_token_bytes,
        "send_timeout_s": s.stalled_send_timeout_s,
        "idle_rss_kib": idle,
        "waves": [],
    }
    for wave in range(1, s.stalled_waves + 1):
        peak = PeakRss(service)
        load = Load(target, totals, prefix=f"s{wave}-", connect_concurrency=128)
        await asyncio.gather(
            *(
                load.open_stream(10**6, 0, "fast", size=s.stalled_token_bytes, stall=True)
                for _ in range(s.stalled_streams)
            )
        )
        await wait_upstream_stopped(bench, s.stalled_streams, 60.0)
        left = await bench.upstream_idle(s.stalled_send_timeout_s * 3 + 30.0)
        held = await peak.stop()
        await asyncio.sleep(s.stalled_settle_s)
        after = service.usage().rss_kib
        await load.stop()
        figures["waves"].append(
            {
                "peak_rss_kib": held,
                "kib_per_stream": round((held - idle) / s.stalled_streams, 2),
                "rss_after_timeout_kib": after,
                "upstream_left_running": left,
            }
        )
    first, *later = figures["waves"]
    # What the process grew by after its first wave of stalled clients: at the
    # peak of any later wave, and once they have all ended.
    figures["later_wave_growth_kib"] = max(
        max(w["peak_rss_kib"] for w in later) - first["peak_rss_kib"],
        max(w["rss_after_timeout_kib"] for w in later) - first["rss_after_timeout_kib"],
    )
    # Non-zero: the machine's TCP memory was under pressure, and the kernel, not
    # the service, decided when the streams moved; the figures are not to be quoted.
    figures["kernel_tcp_memory_pressures"] = tcp_memory_pressures() - pressures
    return figures


class PeakRss:
    """A process's highest RSS, sampled every 20 ms from creation until ``stop``."""

    def __init__(self, process: Process) -> None:
        self.process = process
        self.peak = process.usage().rss_kib
        self._task = asyncio.create_task(self._sample())

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, self.process.usage().rss_kib)
            await asyncio.sleep(0.02)

    async def stop(self) -> int:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        return max(self.peak, self.process.usage().rss_kib)


def tcp_memory_pressures() -> int:
    """How many times the kernel's TCP memory has entered pressure since boot (0 where unknown)."""
    try:
        with open("/proc/net/netstat") as f:
            lines = f.read().splitlines()
    except OSError:
        return 0
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            fields = dict(zip(names.split()[1:], values.split()[1:], strict=False))
            return int(fields.get("TCPMemoryPressures", 0))
    return 0


async def wait_upstream_stopped(bench: Bench, streams: int, within: float) -> None:
    """Until ``streams`` generations run and none has sent a line since the last look (all stalled)."""
    deadline = time.monotonic() + within
    last: dict[str, int] = {}
    while time.monotonic() < deadline:
        data = await bench.generations()
        sent = {g[0]: g[1] for g in data["generations"] if not g[2] and g[3] is None}
        if len(sent) >= streams and sent == last:
            return
        last = sent
        await asyncio.sleep(0.5)
    raise RuntimeError(f"the upstream did not stall within {within} s")


async def wait_ended(clients: list[StreamClient], within: float) -> None:
    deadline = time.monotonic() + within
    while not all(c.ended for c in clients):
        if time.monotonic() > deadline:
            raise RuntimeError("warm-up streams did not end")
        await asyncio.sleep(0.02)


async def wait_for_upstream(bench: Bench, active: int, within: float) -> None:
    deadline = time.monotonic() + within
    while (await bench.generations())["active"] < active:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the upstream did not see {active} requests within {within:g} s")
        await asyncio.sleep(0.02)


def start_profiler(pid: int, path: Path) -> subprocess.Popen[bytes]:
    """py-spy sampling the service (collapsed stacks, for flame graphs or grep)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    return subprocess.Popen(
        [py_spy, "record", "--pid", str(pid), "--rate", "250", "--format", "raw", "--nonblocking", "-o", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def open_files_limit(pid: int) -> int:
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                return int(line.split()[3])
    return 0


SCENARIO_FUNCTIONS = {"fixed": fixed_load, "max": max_rate, "memory": memory, "cancel": cancel, "stalled": stalled}


# -- the run


def machine() -> dict[str, Any]:
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "sse"], cwd=ROOT, capture_output=True, text=True)
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "aiohttp": _version("aiohttp"),
        "commit": commit.stdout.strip() + ("+changes" if dirty.stdout.strip() else ""),
    }


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


def loadavg() -> float:
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


async def wait_quiet(threshold: float, within: float) -> float:
    """Wait up to ``within`` s for the 1-minute load average to fall below ``threshold``."""
    deadline = time.monotonic() + within
    while (load := loadavg()) >= threshold and time.monotonic() < deadline:
        print(f"waiting for a quiet machine: load {load:.2f} >= {threshold:g}", file=sys.stderr, flush=True)
        await asyncio.sleep(min(30.0, max(1.0, deadline - time.monotonic())))
    return load


async def run(args: argparse.Namespace) -> dict[str, Any]:
    scale = SCALES[args.scale]
    for change in args.set:
        name, _, value = change.partition("=")
        current = getattr(scale, name)
        kind = type(current)
        scale = replace(scale, **{name: tuple(int(v) for v in value.split(",")) if kind is tuple else kind(value)})
    service_cpus, harness_cpus = cores()
    os.sched_setaffinity(0, harness_cpus)
    files = raise_fd_limit()
    results: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "scale": args.scale,
        "scale_figures": asdict(scale),
        "machine": machine(),
        "pinning": {"service": sorted(service_cpus), "upstream_and_load": sorted(harness_cpus)},
        "open_files_limit": files,
        "service_args": args.service_args,
        "service_root": str(args.service_root),
    }
    if args.quiet_below:
        await wait_quiet(args.quiet_below, args.quiet_wait)
    results["loadavg_before"] = loadavg()
    logs = args.out / "logs"
    with open(logs / "upstream.log", "ab") as upstream_log:  # noqa: ASYNC230 (before anything is measured)
        upstream, upstream_port = start_upstream(harness_cpus, upstream_log)
        bench = Bench(scale, upstream, upstream_port, service_cpus, harness_cpus, logs, list(args.service_args))
        bench.profile = args.profile
        bench.service_root = args.service_root
        try:
            for name in args.scenarios:
                for mode in args.modes:
                    print(f"{name} / {mode} ...", file=sys.stderr, flush=True)
                    body = SCENARIO_FUNCTIONS[name]

                    async def scenario(target: Target, service: Process | None, body: Any = body) -> Any:
                        return await body(bench, target, service)

                    results.setdefault(name, {})[mode] = await bench.with_target(mode, name, scenario)
        finally:
            upstream.stop()
    results["loadavg_after"] = loadavg()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark the relay against a direct reader on loopback.")
    parser.add_argument("--scale", choices=sorted(SCALES), default="full", help="full (default) or smoke")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help=f"comma-separated: {', '.join(SCENARIOS)}")
    parser.add_argument("--modes", default="direct,relay", help="comma-separated: direct, relay")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"), help="folder for the JSON results")
    parser.add_argument("--quiet-below", type=float, default=0.0, help="wait until the 1-min load is below this")
    parser.add_argument("--quiet-wait", type=float, default=1800.0, help="longest wait for a quiet machine, s")
    parser.add_argument("--label", default="", help="a name for this run, kept in the results")
    parser.add_argument("--service-root", default=str(ROOT), help="run the service from this checkout instead")
    parser.add_argument(
        "--floor",
        action="store_true",
        help="relay through bench/floor (a minimal relay: what any Python relay costs here) instead of the service",
    )
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="change one scale figure")
    parser.add_argument("--profile", default="", help="folder for py-spy profiles of the service (one per scenario)")
    parser.add_argument("service_args", nargs="*", help="extra flags for the service (after --)")
    args = parser.parse_args(argv)
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    args.modes = [m for m in args.modes.split(",") if m]
    unknown = [s for s in args.scenarios if s not in SCENARIOS]
    unknown += [m for m in args.modes if m not in ("direct", "relay")]
    if unknown:
        parser.error(f"unknown scenario or mode: {', '.join(unknown)}")
    args.out = Path(args.out)
    (args.out / "logs").mkdir(parents=True, exist_ok=True)
    args.profile = Path(args.profile) if args.profile else None
    args.service_root = (ROOT / "bench" / "floor") if args.floor else Path(args.service_root).resolve()
    results = asyncio.run(run(args))
    results["label"] = args.label
    path = report.write(results, Path(args.out))
    print(report.table(results))
    print(f"\nresults: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
