"""Run Debian's nginx for a test: the rendered llm-sse site on loopback ports.

nginx runs in the foreground (``daemon off``) from a private work folder,
with its pid file, temp folders and logs there.  Started as root (as in CI),
the whole nginx process runs as ``nobody``: nothing in a test needs
privileges, and the site is proven to work without them.

The ``http`` block around the site is deliberately careless, the way a real
one can be: gzip is on for every type, event streams included, so the site's
own ``gzip off`` is what keeps the stream uncompressed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.deploy.nginxconf import Sub, render
from tests.realparts import missing

REPO = Path(__file__).resolve().parents[2]
SITE = REPO / "deploy" / "nginx" / "llm-sse.conf"
SITE_UPSTREAM = "127.0.0.1:8080"
SITE_ROOT = "/opt/llm-sse/static"
SITE_CERT = "/etc/letsencrypt/live/chat.example.com/fullchain.pem"
SITE_KEY = "/etc/letsencrypt/live/chat.example.com/privkey.pem"
SITE_ACCESS_LOG = "/var/log/nginx/access.log"
SITE_ERROR_LOG = "/var/log/nginx/error.log"
START_TIMEOUT = 15.0

MAIN_CONF = """\
worker_processes 1;
daemon off;
pid {work}/nginx.pid;
error_log stderr notice;
events {{
    worker_connections 256;
}}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    access_log off;
    client_body_temp_path {work}/temp/body;
    proxy_temp_path {work}/temp/proxy;
    fastcgi_temp_path {work}/temp/fastcgi;
    uwsgi_temp_path {work}/temp/uwsgi;
    scgi_temp_path {work}/temp/scgi;
    gzip on;
    gzip_proxied any;
    gzip_min_length 1;
    gzip_types text/event-stream application/json text/css text/javascript application/javascript;
    include {site};
}}
"""


def nginx_binary() -> str:
    """Debian's nginx; missing, the test fails in CI and is skipped elsewhere."""
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )
    if found:
        return found
    missing("nginx", "`make system-deps` installs nginx-light")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_workdir() -> Path:
    """A private folder nginx (possibly running as nobody) can use.

    Not pytest's tmp_path: that lives under a root-only folder when the
    tests run as root, where ``nobody`` could not reach it.
    """
    return Path(tempfile.mkdtemp(prefix="llm-sse-nginx-"))


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1 (openssl's command line)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )  # fmt: skip
    return cert, key


@dataclass
class Nginx:
    process: asyncio.subprocess.Process
    workdir: Path
    port: int
    tls_port: int | None
    site: str
    log: list[str] = field(default_factory=list)
    _reader: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def https_url(self) -> str:
        assert self.tls_port is not None, "started without TLS"
        return f"https://127.0.0.1:{self.tls_port}"

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            try:
                async with asyncio.timeout(10):
                    await self.process.wait()
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    async def _drain_log(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            self.log.append(line.decode(errors="replace").rstrip())


StartProxy = Callable[..., Awaitable[Nginx]]
"""The ``start_proxy`` fixture: nginx with the site before one instance, or several."""


async def start_nginx(
    workdir: Path,
    *,
    upstream: str,
    static_dir: Path,
    tls: tuple[Path, Path] | None = None,
    override: Mapping[str, Sequence[str]] | None = None,
    add: Mapping[str, Sequence[str]] | None = None,
) -> Nginx:
    """Start nginx with the site rendered for ``upstream`` (``host:port``).

    ``override`` and ``add`` are passed to the renderer (negative tests);
    ``tls`` (certificate, key) enables the site's TLS + HTTP/2 example.
    """
    binary = nginx_binary()
    source = SITE.read_text()
    for attempt in range(3):
        port, tls_port = free_port(), free_port() if tls else None
        subs = [
            Sub("server", SITE_UPSTREAM, upstream),
            Sub("listen", "80", f"127.0.0.1:{port}"),
            Sub("root", SITE_ROOT, str(static_dir)),
            Sub("access_log", SITE_ACCESS_LOG, str(workdir / "access.log")),
            Sub("error_log", SITE_ERROR_LOG, str(workdir / "error.log")),
        ]
        if tls is not None:
            subs += [
                Sub("listen", "443", f"127.0.0.1:{tls_port}"),
                Sub("ssl_certificate", SITE_CERT, str(tls[0])),
                Sub("ssl_certificate_key", SITE_KEY, str(tls[1])),
            ]
        site = render(source, subs, enable=["TLS"] if tls else [], override=override, add=add)
        (workdir / "llm-sse.conf").write_text(site)
        (workdir / "nginx.conf").write_text(MAIN_CONF.format(work=workdir, site=workdir / "llm-sse.conf"))
        (workdir / "temp").mkdir(exist_ok=True)
        nginx = await _launch(binary, workdir, port, tls_port, site)
        if nginx is not None:
            return nginx
        if attempt == 2:
            break
    raise RuntimeError("nginx could not bind a free loopback port three times")


def _unprivileged(workdir: Path) -> dict[str, object]:
    """As root, hand ``workdir`` to ``nobody`` and return the arguments to run as it."""
    if os.geteuid() != 0:
        return {}
    nobody = pwd.getpwnam("nobody")
    for path in [workdir, *workdir.rglob("*")]:
        os.chown(path, nobody.pw_uid, nobody.pw_gid, follow_symlinks=False)
    return {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}


async def _launch(binary: str, workdir: Path, port: int, tls_port: int | None, site: str) -> Nginx | None:
    """Start nginx; None if its port was taken meanwhile, an error for anything else."""
    kwargs = _unprivileged(workdir)
    process = await asyncio.create_subprocess_exec(
        binary,
        "-p", str(workdir), "-c", str(workdir / "nginx.conf"), "-e", "stderr",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        **kwargs,  # type: ignore[arg-type]
    )  # fmt: skip
    assert process.stderr is not None
    nginx = Nginx(process, workdir, port, tls_port, site)
    try:
        async with asyncio.timeout(START_TIMEOUT):
            while True:
                raw = await process.stderr.readline()
                if not raw:
                    break
                line = raw.decode(errors="replace").rstrip()
                nginx.log.append(line)
                if "start worker process " in line:
                    nginx._reader = asyncio.create_task(nginx._drain_log(process.stderr))
                    return nginx
    except TimeoutError:
        pass
    await nginx.stop()
    output = "\n".join(nginx.log)
    if "Address already in use" in output:
        return None
    raise RuntimeError(f"nginx did not start:\n{output}\n--- site ---\n{site}")
