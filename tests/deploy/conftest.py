"""The deploy suites' set-up: nginx with the site in front of one or more instances of the service.

``start_proxy`` starts Debian's nginx with the rendered site before the
instances it is given, listed as deploy/README.md's "Several instances" says;
``deployed`` starts an instance in this process with the deploy example's
settings; ``service_log`` collects the service's log records.  A real process
(signals, exit codes, sd_notify) is ``tests.deploy.process.start_instance``.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sse.settings import Settings
from tests.deploy.nginx import Nginx, StartProxy, make_workdir, start_nginx
from tests.deploy.streams import LogWaiter
from tests.deploy.units import ENV_EXAMPLE, environment_file
from tests.fakes.ollama import FakeOllama
from tests.helpers import MakeService, Service

STATIC_FILES = {
    "index.html": "<!doctype html><title>chat</title><script src=app.js></script>",
    "app.js": "console.log('chat');\n",
    "style.css": "body { margin: 0 }\n",
    "vendor/marked-15.0.0.min.js": "/* vendored */\n",
}


@pytest.fixture
def workdir() -> Iterator[Path]:
    folder = make_workdir()
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def static_dir(workdir: Path) -> Path:
    """The chat page's folder, served by nginx and by the service alike."""
    folder = workdir / "static"
    for name, text in STATIC_FILES.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


def address(upstream: str) -> str:
    """``host:port`` of an instance given by URL or by address."""
    return upstream.removeprefix("http://")


@pytest.fixture
async def start_proxy(workdir: Path, static_dir: Path) -> AsyncIterator[StartProxy]:
    """Start nginx with the site in front of ``upstream`` and any ``more`` instances (URLs or ``host:port``).

    The site names one instance; each further one is added to its
    ``upstream`` block as deploy/README.md says (``max_fails=0``).
    """
    started: list[Nginx] = []

    async def start(upstream: str, *more: str, **kwargs: Any) -> Nginx:
        if more:
            servers = [f"server {address(other)} max_fails=0" for other in more]
            kwargs["add"] = {**kwargs.get("add", {}), "upstream llm_sse": servers}
        nginx = await start_nginx(workdir, upstream=address(upstream), static_dir=static_dir, **kwargs)
        started.append(nginx)
        return nginx

    yield start
    for nginx in started:
        await nginx.stop()


@pytest.fixture
def deployed(
    fake_ollama: FakeOllama, static_dir: Path, run_service: Callable[[Settings], Awaitable[Service]]
) -> MakeService:
    """Start the service with the deploy example's settings (deploy/llm-sse.env).

    Only what a test must change is overridden: the upstream's address, the
    port (any free one) and the static folder; plus keyword overrides.
    """

    async def make(**overrides: Any) -> Service:
        env = environment_file(ENV_EXAMPLE) | {"OLLAMA_URL": fake_ollama.url, "LLM_SSE_PORT": "0"}
        return await run_service(Settings.load([], environ=env).replace(static_dir=str(static_dir), **overrides))

    return make


@pytest.fixture
def service_log() -> Iterator[LogWaiter]:
    logger = logging.getLogger("llm_sse")
    waiter = LogWaiter()
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(waiter)
    yield waiter
    logger.removeHandler(waiter)
    logger.setLevel(level)
