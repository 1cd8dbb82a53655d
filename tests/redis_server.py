"""Real Redis for the tests: loopback, free ports, temp dirs, no persistence, bounded waits.

``RedisServer`` is one redis-server; ``RedisCluster`` three primaries joined
with ``redis-cli --cluster create``; ``RedisSentinel`` a primary, its replica
and a sentinel watching them (``redis-server --sentinel``: the Debian package
``redis-server`` has it, no ``redis-sentinel`` package needed).
"""

from __future__ import annotations

import os
import selectors
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

READY = b"Ready to accept connections"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """``redis-server`` as a child process; ``start()`` returns once it accepts connections."""

    def __init__(
        self,
        executable: str,
        port: int | None = None,
        *,
        args: tuple[str, ...] = (),
        config: str | None = None,
        ready: bytes = READY,
    ) -> None:
        self.executable = executable
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="llm-sse-redis-"))
        self.args = args  # more options, e.g. cluster or replica ones
        self.config = config  # a config file's text (a sentinel needs one it can rewrite)
        self.ready = ready
        self.proc: subprocess.Popen[bytes] | None = None
        self.output: list[bytes] = []
        self._drainer: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, within: float = 20.0) -> RedisServer:
        command = [self.executable]
        if self.config is not None:
            config_file = self.dir / "redis.conf"
            config_file.write_text(self.config)
            command.append(str(config_file))
        command += [
            "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
            "--daemonize", "no", "--loglevel", "notice",
        ]  # fmt: skip
        if "--sentinel" not in self.args:
            command += ["--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen(
            [*command, *self.args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + within
        seen = b""
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            # Raw reads, not readline(): a buffered reader can hold the ready
            # line while select() waits for more bytes that never come.
            while self.ready not in seen:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    self.stop()
                    raise RuntimeError(f"redis-server did not start within {within} s: {seen!r}")
                chunk = os.read(fd, 65536)
                if not chunk:
                    self.stop()
                    raise RuntimeError(f"redis-server exited: {seen!r}")
                seen += chunk
        self.output.append(seen)
        # Keep reading its output so a full pipe can never block it.
        self._drainer = threading.Thread(target=self._drain, daemon=True)
        self._drainer.start()
        return self

    def _drain(self) -> None:
        assert self.proc is not None
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)

    def kill(self) -> None:
        """Die at once, as a crash would (no shutdown, nothing saved)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(10)
            if self._drainer is not None:
                self._drainer.join(10)  # ends at the pipe's EOF
            if self.proc.stdout is not None:
                self.proc.stdout.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def find_redis_server() -> str | None:
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.access("/usr/bin/redis-server", os.X_OK) else None
    )


def find_redis_cli() -> str | None:
    return shutil.which("redis-cli") or ("/usr/bin/redis-cli" if os.access("/usr/bin/redis-cli", os.X_OK) else None)


def wait_until(check: Callable[[], bool], within: float, what: str) -> None:
    """Poll ``check`` (a state other processes change) until it holds; fail after ``within`` s."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not happen within {within} s")
        time.sleep(0.05)


def _command(address: str, *args: str, password: str | None = None) -> str:
    """One command through ``redis-cli`` (no client library needed here); its output, '' if it failed."""
    cli = find_redis_cli()
    assert cli is not None
    host, port = address.rsplit(":", 1)
    command = [cli, "-h", host, "-p", port]
    if password:
        command += ["--no-auth-warning", "-a", password]
    try:
        done = subprocess.run([*command, *args], capture_output=True, timeout=10, check=False)
    except subprocess.TimeoutExpired:
        return ""
    return done.stdout.decode(errors="replace") if done.returncode == 0 else ""


class RedisCluster:
    """A Redis Cluster of ``size`` primaries (no replicas) on loopback."""

    def __init__(self, executable: str, size: int = 3) -> None:
        self.nodes = [RedisServer(executable, args=self._node_args()) for _ in range(size)]

    @staticmethod
    def _node_args() -> tuple[str, ...]:
        return (
            "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
            "--cluster-port", str(free_port()), "--cluster-node-timeout", "2000",
        )  # fmt: skip

    @property
    def url(self) -> str:
        """The service's setting: any node is enough to find the others; two make start-up sturdier."""
        return "redis+cluster://" + ",".join(node.address for node in self.nodes[:2])

    def start(self, within: float = 30.0) -> RedisCluster:
        cli = find_redis_cli()
        if cli is None:
            raise RuntimeError("redis-cli is missing")
        try:
            for node in self.nodes:
                node.start()
            created = subprocess.run(
                [cli, "--cluster", "create", *(node.address for node in self.nodes), "--cluster-replicas", "0",
                 "--cluster-yes"],
                capture_output=True, timeout=within, check=False,
            )  # fmt: skip
            if created.returncode != 0:
                raise RuntimeError(f"redis-cli --cluster create failed: {created.stdout!r} {created.stderr!r}")
            for node in self.nodes:
                wait_until(
                    lambda node=node: "cluster_state:ok" in _command(node.address, "cluster", "info"),
                    within,
                    f"cluster state ok on {node.address}",
                )
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


class RedisSentinel:
    """A primary, its replica, and sentinels that fail over to the replica when the primary dies.

    Tuned for tests: the primary counts as down after 1 s without an answer,
    and one sentinel is a quorum.
    """

    SERVICE = "llm-sse-primary"

    def __init__(self, executable: str, sentinels: int = 1) -> None:
        self.primary = RedisServer(executable)
        self.replica = RedisServer(executable, args=("--replicaof", "127.0.0.1", str(self.primary.port)))
        monitor = (
            f"sentinel monitor {self.SERVICE} 127.0.0.1 {self.primary.port} 1\n"
            f"sentinel down-after-milliseconds {self.SERVICE} 1000\n"
            f"sentinel failover-timeout {self.SERVICE} 5000\n"
            f"sentinel parallel-syncs {self.SERVICE} 1\n"
        )
        self.sentinels = [
            RedisServer(executable, args=("--sentinel",), config=monitor, ready=b"+monitor master")
            for _ in range(sentinels)
        ]

    @property
    def url(self) -> str:
        """The service's setting: the sentinels, and the name of the primary they watch."""
        return "redis+sentinel://" + ",".join(s.address for s in self.sentinels) + f"/{self.SERVICE}"

    def start(self, within: float = 30.0) -> RedisSentinel:
        try:
            self.primary.start()
            self.replica.start()
            wait_until(
                lambda: "master_link_status:up" in _command(self.replica.address, "info", "replication"),
                within,
                "the replica's link to its primary",
            )
            for sentinel in self.sentinels:
                sentinel.start()
            # Each sentinel must know the replica before a failover can pick it.
            for sentinel in self.sentinels:
                wait_until(
                    lambda sentinel=sentinel: (
                        str(self.replica.port) in _command(sentinel.address, "sentinel", "replicas", self.SERVICE)
                    ),
                    within,
                    f"sentinel {sentinel.address} seeing the replica",
                )
        except BaseException:
            self.stop()
            raise
        return self

    def primary_port(self) -> int | None:
        """The port the sentinels name as primary now (None if they do not answer)."""
        answer = _command(self.sentinels[0].address, "sentinel", "get-master-addr-by-name", self.SERVICE).split()
        return int(answer[1]) if len(answer) == 2 else None

    def wait_failover(self, within: float = 30.0) -> None:
        """Block until the sentinels have promoted the replica and it accepts writes."""
        wait_until(lambda: self.primary_port() == self.replica.port, within, "the failover to the replica")
        wait_until(
            lambda: "role:master" in _command(self.replica.address, "info", "replication"),
            within,
            "the replica's promotion",
        )

    def stop(self) -> None:
        for server in [*self.sentinels, self.replica, self.primary]:
            server.stop()
