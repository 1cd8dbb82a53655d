"""Several instances behind the nginx site: only a dead or draining instance is skipped.

deploy/README.md's "Several instances" lists each instance in the site's
``upstream`` block (``server 127.0.0.1:PORT max_fails=0;``).  What nginx may
do with a request there:

* an instance that is down (connection refused) or draining (it closes a
  proxy's request unanswered) -> the request goes to the next instance;
* any answer of the service, every 503 included (``upstream_busy`` when the
  model server is busy, ``server_busy`` at the stream limit) -> the client
  gets it as it is, the request is never replayed on another instance (a
  chat that reached a model server has run), and no instance is ever taken
  out of the rotation for it.

A negative test puts back the site's old ``proxy_next_upstream ... http_503``
and shows the replay.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from sse.web.keys import REGISTRY
from tests.deploy.nginx import Nginx, StartProxy, free_port
from tests.deploy.process import start_instance
from tests.deploy.streams import CHAT, Hold, Stream, held_answer
from tests.fakes.ollama import FakeOllama, Script
from tests.helpers import MakeService, StreamRecords, eventually, read_frames

pytestmark = pytest.mark.slow


async def chat_through(client: aiohttp.ClientSession, nginx: Nginx) -> tuple[int, Any]:
    """POST a chat through nginx: the status, and the error code (or the last frame's event)."""
    async with client.post(nginx.url + "/api/chat", json=CHAT) as response:
        if response.content_type == "application/json":
            return response.status, (await response.json())["error"]["code"]
        frames = await read_frames(response)
        return response.status, frames[-1].event


async def test_a_model_servers_503_reaches_the_client_as_it_is_and_is_never_replayed(
    start_proxy: StartProxy, deployed: MakeService, fake_ollama: FakeOllama, client: aiohttp.ClientSession
) -> None:
    one, two = await deployed(), await deployed()
    served = StreamRecords(one.app), StreamRecords(two.app)
    nginx = await start_proxy(one.url, two.url)
    for _ in range(4):
        fake_ollama.push(Script(status=503, error="server busy, please try again"))
    for _ in range(4):
        status, code = await chat_through(client, nginx)
        assert (status, code) == (503, "upstream_busy")
    assert len(fake_ollama.requests) == 4  # one model-server request per chat: nothing replayed
    # No instance was taken out: both go on serving.
    for _ in range(4):
        assert await chat_through(client, nginx) == (200, "done")
    assert len(fake_ollama.requests) == 8
    assert all(len(records) >= 2 for records in served), [len(r) for r in served]


async def test_the_services_own_503_at_its_stream_limit_reaches_the_client_and_takes_no_instance_out(
    start_proxy: StartProxy, deployed: MakeService, fake_ollama: FakeOllama, client: aiohttp.ClientSession
) -> None:
    one, two = await deployed(max_streams=1), await deployed(max_streams=1)
    nginx = await start_proxy(one.url, two.url)
    holds = [Hold(), Hold()]
    for hold in holds:
        fake_ollama.push(held_answer(hold))
    open_streams = [Stream(client, nginx.url + "/api/chat") for _ in holds]
    for stream in open_streams:  # least_conn: one on each instance
        assert await stream.wait_first_token(10.0)
    assert (await chat_through(client, nginx)) == (503, "server_busy")
    assert len(fake_ollama.requests) == 2
    for hold in holds:
        hold.set()
    for stream in open_streams:
        await stream.finish()
    for _ in range(4):
        assert await chat_through(client, nginx) == (200, "done")


async def test_with_the_old_next_upstream_http_503_a_busy_answer_was_replayed_on_the_other_instance(
    start_proxy: StartProxy, deployed: MakeService, fake_ollama: FakeOllama, client: aiohttp.ClientSession
) -> None:
    """The check above can fail: with http_503 listed, one chat reached the model server twice."""
    one, two = await deployed(), await deployed()
    nginx = await start_proxy(
        one.url, two.url, override={"proxy_next_upstream": ["error", "timeout", "http_503", "non_idempotent"]}
    )
    for _ in range(2):
        fake_ollama.push(Script(status=503, error="server busy, please try again"))
    status, _ = await chat_through(client, nginx)
    assert status == 503
    assert len(fake_ollama.requests) == 2


async def test_a_dead_instance_is_skipped(
    start_proxy: StartProxy, deployed: MakeService, client: aiohttp.ClientSession
) -> None:
    serving = await deployed()
    served = StreamRecords(serving.app)
    nginx = await start_proxy(f"127.0.0.1:{free_port()}", serving.url)
    for _ in range(4):
        assert await chat_through(client, nginx) == (200, "done")
    assert len(served) == 4


async def test_a_rolling_restart_of_two_instances_never_leaves_the_site_without_one(
    start_proxy: StartProxy, deployed: MakeService, client: aiohttp.ClientSession
) -> None:
    """One drains, then the other, within seconds: nginx must not have taken the first out for 10 s.

    With nginx's default max_fails=1 the first instance's refusals kept it
    out of the rotation while the second drained, and every request got 503.
    """
    one, two = await deployed(), await deployed()
    served = StreamRecords(one.app), StreamRecords(two.app)
    nginx = await start_proxy(one.url, two.url)
    for draining, serving in ((0, 1), (1, 0)):
        (one, two)[draining].app[REGISTRY].draining = True
        (one, two)[serving].app[REGISTRY].draining = False
        before = len(served[serving])
        for _ in range(3):
            assert await chat_through(client, nginx) == (200, "done")
        assert len(served[serving]) == before + 3


async def test_a_lone_draining_instance_gets_nginxs_json_503(
    start_proxy: StartProxy, deployed: MakeService, client: aiohttp.ClientSession
) -> None:
    """With no other instance to try, the client gets nginx's JSON 503 and Retry-After."""
    service = await deployed()
    service.app[REGISTRY].draining = True
    nginx = await start_proxy(service.url)
    async with client.post(nginx.url + "/api/chat", json=CHAT) as response:
        assert response.status == 503
        assert response.headers["Retry-After"] == "1"
        assert (await response.json())["error"]["code"] == "service_unavailable"


async def test_a_resume_on_a_draining_instance_goes_to_the_next(
    start_proxy: StartProxy, deployed: MakeService, client: aiohttp.ClientSession
) -> None:
    """GET /api/streams/...: the serving instance answers (here: it does not know the stream, 404)."""
    draining, serving = await deployed(), await deployed()
    draining.app[REGISTRY].draining = True
    nginx = await start_proxy(draining.url, serving.url)
    for _ in range(2):
        async with client.get(nginx.url + "/api/streams/AAAAAAAAAAAAAAAAAAAAAA?token=t") as response:
            assert response.status == 404
            assert (await response.json())["error"]["code"] == "stream_not_found"


async def test_restarting_two_real_instances_one_after_the_other_loses_no_request(
    start_proxy: StartProxy, fake_ollama: FakeOllama, client: aiohttp.ClientSession
) -> None:
    """deploy/README.md's rolling restart, with real processes, SIGTERM and nginx's kept-alive connections.

    Chats go through nginx one after another the whole time; each instance in
    turn drains, exits and is started again on its port.  Every chat ends with
    ``done``: requests on nginx's kept-alive connections to the draining
    instance, and connections refused while it is down, all go to the other.
    """
    ports = [free_port(), free_port()]

    # nginx is a trusted proxy (a draining instance closes its requests unanswered); one client, many chats.
    flags = ["--trusted-proxies", "127.0.0.1,::1", "--rate-per-minute", "0", "--max-streams-per-client", "0"]
    apps = [await start_instance(fake_ollama.url, *flags, "--port", str(port)) for port in ports]
    outcomes: list[tuple[int, Any]] = []
    stop = asyncio.Event()

    async def chat_all_the_time() -> None:
        while not stop.is_set():
            outcomes.append(await chat_through(client, nginx))

    try:
        nginx = await start_proxy(*(f"127.0.0.1:{port}" for port in ports))
        chats = asyncio.create_task(chat_all_the_time())
        for i, port in enumerate(ports):
            before = len(outcomes)
            apps[i].terminate()
            assert await apps[i].wait_exit() == 0
            apps[i] = await start_instance(fake_ollama.url, *flags, "--port", str(port))
            await eventually(lambda before=before: len(outcomes) > before + 3, within=30)
        stop.set()
        await chats
    finally:
        stop.set()
        for app in apps:
            await app.stop()
    assert len(outcomes) > 6
    assert set(outcomes) == {(200, "done")}, [o for o in outcomes if o != (200, "done")]
