"""The nginx site keeps secrets out of its logs and the operator's endpoints to the operator.

No resume token reaches any nginx log on any path through the site: the
access log of every location drops the query string, and ``/api/streams/``
writes no error lines (nginx's quote the whole request line, ``?token=``
included, e.g. while no instance is up -- exactly when EventSources
reconnect).  ``/metrics`` and ``/readyz`` answer only to this machine (and
the addresses an operator adds to the site): anyone else gets nginx's JSON
403.  Negative tests show the log checks failing without the site's lines.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from sse.web.keys import REGISTRY
from tests.deploy.nginx import Nginx, StartProxy, free_port
from tests.helpers import MakeService, eventually

pytestmark = pytest.mark.slow

TOKEN = "resume-token-0123456789-SECRET"
STREAM = "AAAAAAAAAAAAAAAAAAAAAA"


def every_log(nginx: Nginx, folder: Path) -> str:
    """Everything nginx wrote: its stderr (the main error log) and every file the site logs to."""
    files = [folder / "access.log", folder / "error.log"]
    return "\n".join([*nginx.log, *(f.read_text() for f in files if f.exists())])


async def resume_while_nothing_listens(nginx: Nginx, client: aiohttp.ClientSession, folder: Path) -> None:
    """An EventSource's reconnect (GET ...?token=) and a cancel, with no instance up: nginx's JSON 503."""
    async with client.get(f"{nginx.url}/api/streams/{STREAM}?token={TOKEN}&after=3") as response:
        assert response.status == 503
        assert (await response.json())["error"]["code"] == "service_unavailable"
    async with client.post(f"{nginx.url}/api/streams/{STREAM}/cancel?token={TOKEN}") as response:
        assert response.status == 503
    access_log = folder / "access.log"
    await eventually(lambda: access_log.exists() and access_log.read_text().count(STREAM) == 2)


async def test_no_resume_token_in_any_nginx_log_while_no_instance_is_up(
    start_proxy: StartProxy, client: aiohttp.ClientSession, workdir: Path
) -> None:
    nginx = await start_proxy(f"127.0.0.1:{free_port()}")
    await resume_while_nothing_listens(nginx, client, workdir)
    logged = every_log(nginx, workdir)
    assert f'GET /api/streams/{STREAM} HTTP/1.1" 503' in logged
    assert TOKEN not in logged
    assert "token=" not in logged


async def test_with_the_usual_error_log_the_token_would_be_in_it_while_no_instance_is_up(
    start_proxy: StartProxy, client: aiohttp.ClientSession, workdir: Path
) -> None:
    """The check above can fail: nginx's error lines quote the request line, query string and all."""
    nginx = await start_proxy(f"127.0.0.1:{free_port()}", override={"error_log": [str(workdir / "error.log"), "error"]})
    await resume_while_nothing_listens(nginx, client, workdir)
    await eventually(lambda: TOKEN in every_log(nginx, workdir))


async def test_no_resume_token_in_any_nginx_log_when_a_draining_instance_closes_the_resume(
    start_proxy: StartProxy, deployed: MakeService, client: aiohttp.ClientSession, workdir: Path
) -> None:
    service = await deployed()
    service.app[REGISTRY].draining = True
    nginx = await start_proxy(service.url)
    async with client.get(f"{nginx.url}/api/streams/{STREAM}?token={TOKEN}") as response:
        assert response.status == 503
        assert (await response.json())["error"]["code"] == "service_unavailable"
    access_log = workdir / "access.log"
    await eventually(lambda: access_log.exists() and STREAM in access_log.read_text())
    assert TOKEN not in every_log(nginx, workdir)


async def test_a_resume_that_the_service_refuses_leaves_no_token_in_any_nginx_log(
    start_proxy: StartProxy, deployed: MakeService, client: aiohttp.ClientSession, workdir: Path
) -> None:
    service = await deployed()
    nginx = await start_proxy(service.url)
    async with client.get(f"{nginx.url}/api/streams/{STREAM}?token={TOKEN}") as response:
        assert response.status == 404
    access_log = workdir / "access.log"
    await eventually(lambda: access_log.exists() and STREAM in access_log.read_text())
    assert TOKEN not in every_log(nginx, workdir)


# -- /metrics and /readyz: the operator's only


@pytest.mark.parametrize("path", ["/metrics", "/readyz"])
async def test_operator_endpoints_answer_this_machine_through_nginx(
    start_proxy: StartProxy, deployed: MakeService, client: aiohttp.ClientSession, path: str
) -> None:
    service = await deployed()
    nginx = await start_proxy(service.url)
    async with client.get(nginx.url + path) as response:
        assert response.status == 200
        if path == "/readyz":
            assert (await response.json())["status"] == "ready"
        else:
            assert "llm_sse_" in await response.text()


@pytest.mark.parametrize("path", ["/metrics", "/readyz"])
async def test_operator_endpoints_are_a_json_403_to_anyone_else_through_nginx(
    start_proxy: StartProxy, deployed: MakeService, path: str
) -> None:
    service = await deployed()
    nginx = await start_proxy(service.url)
    # Another loopback address than the site allows: as far as nginx can tell, another machine.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))) as outsider:
        async with outsider.get(nginx.url + path) as response:
            assert response.status == 403
            assert response.headers["Server"].startswith("nginx")
            assert (await response.json())["error"]["code"] == "forbidden"
        async with outsider.get(nginx.url + "/healthz") as response:
            assert response.status == 200  # liveness stays public
