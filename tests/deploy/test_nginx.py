"""The nginx site (deploy/nginx/llm-sse.conf) in front of the real service, with Debian's nginx.

Each promise the site makes is proven through a real nginx: tokens arrive
while the upstream still holds the rest; Stop closes the upstream; heartbeats
outlive nginx's read timeout; an oversized body gets the service's JSON 413;
the stream log names the real client; static files carry the service's
headers; a restart ends open streams with a ``shutdown`` frame.  Where the
promise rests on one directive, a negative test shows the same check failing
without it, so the checks can fail.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from sse.settings import Settings
from sse.web.keys import REGISTRY
from sse.web.page import PAGE_HEADERS
from tests.deploy.nginx import Nginx, StartProxy, free_port, self_signed_certificate
from tests.deploy.nginxconf import parse, walk
from tests.deploy.process import start_instance
from tests.deploy.streams import CHAT, Hold, LogWaiter, Stream, held_answer
from tests.deploy.units import ENV_EXAMPLE, environment_file, seconds
from tests.fakes.ollama import FakeOllama, Hang, Script, Sleep, token_lines
from tests.helpers import MakeService, StreamRecords, text_of
from tests.realparts import missing

pytestmark = pytest.mark.slow


def chat_location(site: str) -> dict[str, list[str]]:
    """The directives of the site's ``location = /api/chat`` block, by name."""
    for _, directive in walk(parse(site)):
        if directive.head == "location = /api/chat":
            assert directive.block is not None
            return {d.name: d.args for d in directive.block}
    raise AssertionError("no location = /api/chat")


# -- (1) tokens arrive as they are generated


async def first_token_while_held(
    client: aiohttp.ClientSession, nginx: Nginx, fake: FakeOllama, window: float
) -> tuple[bool, Stream]:
    """Did the first token reach the client while the upstream held the rest?

    The upstream writes one token and then holds; once it holds, the client
    gets ``window`` seconds to see that token.  Then the upstream finishes.
    """
    hold = Hold()
    fake.push(held_answer(hold))
    stream = Stream(client, nginx.url + "/api/chat", headers={"Accept-Encoding": "gzip"})
    async with asyncio.timeout(10):
        await hold.reached.wait()
    arrived = await stream.wait_first_token(window)
    seen_while_held = [(f.event, f.data.get("text")) for f in stream.frames]
    still_held = not fake.requests[-1].finished
    hold.set()
    await stream.finish()
    assert still_held
    if arrived:
        assert seen_while_held == [("meta", None), ("token", "Hello")]
    return arrived, stream


async def test_first_token_arrives_while_upstream_holds_the_rest(
    start_proxy: StartProxy, deployed: MakeService, fake_ollama: FakeOllama, client: aiohttp.ClientSession
) -> None:
    service = await deployed()
    nginx = await start_proxy(service.url)
    arrived, stream = await first_token_while_held(client, nginx, fake_ollama, window=10.0)
    assert arrived
    assert stream.response is not None
    # The http block has gzip on for text/event-stream; the site turns it off.
    assert "Content-Encoding" not in stream.response.headers
    assert stream.response.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    assert stream.frames[-1].event == "done"
    assert text_of(stream.frames) == "Hello world."


# The site's three defences against buffering, and the one that is enough
# when the others are missing.  With nginx 1.22, `proxy_buffering on` alone
# does not hold tokens back while the upstream answers in HTTP/1.1 chunks
# (nginx passes on each complete chunk); it does when nginx talks HTTP/1.0 to
# the upstream -- nginx's default -- and the answer is delimited by the
# connection's close.  That is the setting the negative test needs.
BUFFERED = {"proxy_buffering": ["on"], "proxy_http_version": ["1.0"]}


async def test_first_token_is_held_back_when_nginx_buffers(
    start_proxy: StartProxy, deployed: MakeService, fake_ollama: FakeOllama, client: aiohttp.ClientSession
) -> None:
    """The check above can fail: a site that buffers (proxy_buffering on, nginx's
    default HTTP/1.0 upstream, the service's X-Accel-Buffering: no ignored)
    holds the first token until the upstream has finished."""
    service = await deployed()
    nginx = await start_proxy(
        service.url, override=BUFFERED, add={"location = /api/chat": ["proxy_ignore_headers X-Accel-Buffering"]}
    )
    arrived, stream = await first_token_while_held(client, nginx, fake_ollama, window=2.0)
    assert not arrived
    assert stream.terminal is not None
    assert stream.terminal.event == "done"  # it all came, at the end


async def test_service_header_alone_keeps_tokens_flowing_when_nginx_buffers(
    start_proxy: StartProxy, deployed: MakeService, fake_ollama: FakeOllama, client: aiohttp.ClientSession
) -> None:
    """A site that buffers still streams: nginx honours the service's X-Accel-Buffering: no."""
    service = await deployed()
    nginx = await start_proxy(service.url, override=BUFFERED)
    arrived, _ = await first_token_while_held(client, nginx, fake_ollama, window=10.0)
    assert arrived


# -- (2) Stop through nginx closes the upstream


async def test_stop_through_nginx_closes_the_upstream(
    start_proxy: StartProxy,
    deployed: MakeService,
    fake_ollama: FakeOllama,
    client: aiohttp.ClientSession,
    service_log: LogWaiter,
) -> None:
    service = await deployed()
    nginx = await start_proxy(service.url)
    fake_ollama.push(Script([*token_lines(["Hello"])[:1], Hang()]))
    stream = Stream(client, nginx.url + "/api/chat")
    assert await stream.wait_first_token(10.0)
    await stream.abort()
    # The upstream is silent (Hang), so only closing its connection ends it.
    async with asyncio.timeout(10):
        await fake_ollama.requests[-1].disconnected.wait()
    line = await service_log.wait_stream()
    assert line["outcome"] == "cancelled"


# -- (3) heartbeats keep a silent stream open through proxy_read_timeout


async def silent_stream(client: aiohttp.ClientSession, nginx: Nginx, fake: FakeOllama, silence: float) -> Stream:
    fake.push(Script([*token_lines(["Hello"])[:1], Sleep(silence), *token_lines([" world"])]))
    stream = Stream(client, nginx.url + "/api/chat")
    await stream.finish(within=silence + 20)
    return stream


async def test_heartbeats_keep_a_silent_stream_open_past_proxy_read_timeout(
    start_proxy: StartProxy, deployed: MakeService, fake_ollama: FakeOllama, client: aiohttp.ClientSession
) -> None:
    service = await deployed(heartbeat=0.2)
    nginx = await start_proxy(service.url, override={"proxy_read_timeout": ["2s"]})
    stream = await silent_stream(client, nginx, fake_ollama, silence=4.0)
    assert not stream.truncated
    assert stream.terminal is not None
    assert stream.terminal.event == "done"
    assert b": ping" in stream.raw


async def test_silence_longer_than_proxy_read_timeout_cuts_the_stream_without_heartbeats(
    start_proxy: StartProxy, deployed: MakeService, fake_ollama: FakeOllama, client: aiohttp.ClientSession
) -> None:
    """The check above can fail: without heartbeats nginx gives up on the silent stream."""
    service = await deployed(heartbeat=60.0)
    nginx = await start_proxy(service.url, override={"proxy_read_timeout": ["2s"]})
    stream = await silent_stream(client, nginx, fake_ollama, silence=4.0)
    assert stream.truncated
    assert stream.terminal is None


def test_proxy_read_timeout_is_well_above_the_heartbeat() -> None:
    site = (Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "llm-sse.conf").read_text()
    read_timeout = seconds(chat_location(site)["proxy_read_timeout"][0])
    heartbeat = Settings.load([], environ=environment_file(ENV_EXAMPLE)).heartbeat
    assert heartbeat == Settings().heartbeat
    assert read_timeout >= 3 * heartbeat


# -- (4) oversized bodies


def padded_prompt(size: int) -> bytes:
    """A JSON body of exactly ``size`` bytes."""
    body = json.dumps({"prompt": ""}).encode()
    return json.dumps({"prompt": "x" * (size - len(body))}).encode()


def rejections(log: LogWaiter) -> list[dict[str, Any]]:
    """The fields of the service's "request rejected" lines (logged before it answers)."""
    return [r.fields for r in log.records if r.getMessage() == "request rejected"]


async def test_oversized_body_gets_the_services_json_413_from_nginx(
    start_proxy: StartProxy,
    deployed: MakeService,
    fake_ollama: FakeOllama,
    client: aiohttp.ClientSession,
    service_log: LogWaiter,
) -> None:
    service = await deployed()
    nginx = await start_proxy(service.url)
    limit = service.settings.max_body_bytes
    headers = {"Content-Type": "application/json"}
    body = padded_prompt(limit + 1)

    async with client.post(service.url + "/api/chat", data=io.BytesIO(body), headers=headers) as direct:
        assert direct.status == 413
        expected = await direct.json()
    rejected_by_service = len(rejections(service_log))
    async with client.post(nginx.url + "/api/chat", data=io.BytesIO(body), headers=headers) as proxied:
        assert proxied.status == 413
        assert proxied.headers["Content-Type"].startswith("application/json")
        assert await proxied.json() == expected
    assert expected["error"]["code"] == "body_too_large"
    assert len(rejections(service_log)) == rejected_by_service  # nginx answered, not the service
    assert not fake_ollama.requests


async def test_body_at_the_limit_passes_nginx_to_the_service(
    start_proxy: StartProxy, deployed: MakeService, client: aiohttp.ClientSession
) -> None:
    """nginx's limit is the service's: a body of exactly the limit is the service's to judge."""
    service = await deployed()
    nginx = await start_proxy(service.url)
    body = padded_prompt(service.settings.max_body_bytes)
    async with client.post(
        nginx.url + "/api/chat", data=io.BytesIO(body), headers={"Content-Type": "application/json"}
    ) as r:
        error = (await r.json())["error"]
    # The service read it and refused the prompt's length, not the body's size.
    assert (r.status, error["code"]) == (413, "input_too_long")


async def test_oversized_chunked_body_gets_413_from_nginx(
    start_proxy: StartProxy,
    deployed: MakeService,
    fake_ollama: FakeOllama,
    client: aiohttp.ClientSession,
    service_log: LogWaiter,
) -> None:
    service = await deployed()
    nginx = await start_proxy(service.url)
    body = padded_prompt(service.settings.max_body_bytes + 1)

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: sent chunked
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    async with client.post(nginx.url + "/api/chat", data=chunks(), headers={"Content-Type": "application/json"}) as r:
        assert r.status == 413
        assert (await r.json())["error"]["code"] == "body_too_large"
    assert not rejections(service_log)  # nginx answered, not the service
    assert not fake_ollama.requests


# -- (5) the real client's address


@pytest.mark.parametrize(
    ("trusted_proxies", "forwarded_for", "logged"),
    [
        # The deploy example trusts nginx; the client cannot forge its address.
        (None, "203.0.113.9", "127.0.0.2"),
        # A load balancer in front of nginx (127.0.0.2), trusted too: its client.
        ("127.0.0.1,::1,127.0.0.2", "198.51.100.7", "198.51.100.7"),
        # Without trusting nginx, every client looks like nginx.
        ("", None, "127.0.0.1"),
    ],
)
async def test_stream_log_names_the_real_client(
    start_proxy: StartProxy,
    deployed: MakeService,
    service_log: LogWaiter,
    trusted_proxies: str | None,
    forwarded_for: str | None,
    logged: str,
) -> None:
    overrides = {} if trusted_proxies is None else {"trusted_proxies": trusted_proxies}
    service = await deployed(**overrides)
    nginx = await start_proxy(service.url)
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    # The client connects from another loopback address than nginx's own.
    connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
    async with aiohttp.ClientSession(connector=connector) as client:
        stream = Stream(client, nginx.url + "/api/chat", headers=headers)
        await stream.finish()
    assert stream.terminal is not None
    assert stream.terminal.event == "done"
    line = await service_log.wait_stream()
    assert line["client"] == logged


# -- static files and nginx's own errors


@pytest.mark.parametrize("path", ["/", "/index.html", "/app.js", "/style.css", "/vendor/marked-15.0.0.min.js"])
async def test_static_files_come_from_nginx_with_the_services_headers(
    start_proxy: StartProxy, deployed: MakeService, client: aiohttp.ClientSession, path: str
) -> None:
    service = await deployed()
    nginx = await start_proxy(service.url)
    compared = ["Cache-Control", "X-Content-Type-Options", "Referrer-Policy", "Content-Security-Policy"]
    async with client.get(service.url + path) as direct:
        assert direct.status == 200
        expected = {name: direct.headers.get(name) for name in compared}
        body = await direct.read()
    async with client.get(nginx.url + path) as proxied:
        assert proxied.status == 200
        assert proxied.headers["Server"].startswith("nginx")
        assert "Last-Modified" in proxied.headers  # nginx's static module, not a proxied answer
        assert {name: proxied.headers.get(name) for name in compared} == expected
        assert await proxied.read() == body
    if path in ("/", "/index.html"):
        assert expected["Content-Security-Policy"] == PAGE_HEADERS["Content-Security-Policy"]


@pytest.mark.parametrize("path", ["/healthz", "/missing.js", "/.env"])
async def test_what_is_not_a_static_file_is_answered_by_the_service(
    start_proxy: StartProxy, deployed: MakeService, client: aiohttp.ClientSession, path: str
) -> None:
    service = await deployed()
    (Path(service.settings.static_dir) / ".env").write_text("SECRET=1\n")
    nginx = await start_proxy(service.url)
    async with client.get(service.url + path) as direct:
        expected = (direct.status, await direct.json())
    async with client.get(nginx.url + path) as proxied:
        assert (proxied.status, await proxied.json()) == expected


async def test_service_down_gets_a_json_503_from_nginx(start_proxy: StartProxy, client: aiohttp.ClientSession) -> None:
    # Nothing listens on a free port once the probe socket is closed.
    nginx = await start_proxy(f"127.0.0.1:{free_port()}")
    async with client.post(nginx.url + "/api/chat", json=CHAT) as response:
        assert response.status == 503
        assert response.headers["Retry-After"] == "1"
        assert (await response.json())["error"]["code"] == "service_unavailable"


# -- several instances behind one upstream block (more in test_nginx_instances.py)


async def test_a_draining_instance_hands_its_requests_to_the_next(
    start_proxy: StartProxy, deployed: MakeService, client: aiohttp.ClientSession, service_log: LogWaiter
) -> None:
    """Rolling restarts: an instance that is draining is skipped, not shown to clients."""
    draining, serving = await deployed(), await deployed()
    served = StreamRecords(serving.app)
    draining.app[REGISTRY].draining = True
    nginx = await start_proxy(draining.url, serving.url)
    for _ in range(4):
        stream = Stream(client, nginx.url + "/api/chat")
        await stream.finish()
        assert stream.terminal is not None
        assert stream.terminal.event == "done"
    assert len(served) == 4
    refused = [r for r in service_log.records if r.getMessage() == "closed unanswered while draining"]
    assert refused  # the draining instance was asked, and closed the request unanswered


# -- graceful restart through nginx


async def test_sigterm_ends_an_open_stream_with_a_shutdown_frame_through_nginx(
    start_proxy: StartProxy, fake_ollama: FakeOllama, client: aiohttp.ClientSession
) -> None:
    app = await start_instance(fake_ollama.url, "--shutdown-grace", "0.5")
    try:
        nginx = await start_proxy(app.url)
        fake_ollama.push(Script([*token_lines(["Hello"])[:1], Hang()]))
        stream = Stream(client, nginx.url + "/api/chat")
        assert await stream.wait_first_token(10.0)
        app.terminate()
        frames = await stream.finish()
        assert not stream.truncated
        assert frames[-1].event == "error"
        assert frames[-1].data["code"] == "shutdown"
        assert await app.wait_exit() == 0
    finally:
        await app.stop()


async def test_sigterm_lets_an_open_stream_finish_within_the_grace_period_through_nginx(
    start_proxy: StartProxy, fake_ollama: FakeOllama, client: aiohttp.ClientSession
) -> None:
    app = await start_instance(fake_ollama.url, "--shutdown-grace", "30")
    try:
        nginx = await start_proxy(app.url)
        hold = Hold()
        fake_ollama.push(held_answer(hold))
        stream = Stream(client, nginx.url + "/api/chat")
        assert await stream.wait_first_token(10.0)
        app.terminate()
        await app.wait_log(lambda line: line.get("msg") == "shutting down")
        hold.set()
        frames = await stream.finish()
        assert frames[-1].event == "done"
        assert text_of(frames) == "Hello world."
        assert await app.wait_exit() == 0
    finally:
        await app.stop()


# -- TLS + HTTP/2 (the site's example block, enabled)


async def test_tls_http2_example_streams_incrementally(
    start_proxy: StartProxy, deployed: MakeService, fake_ollama: FakeOllama, workdir: Path
) -> None:
    curl = shutil.which("curl")
    if curl is None:
        missing("curl (the HTTP/2 client of this test)", "`make system-deps` installs it")
    service = await deployed()
    nginx = await start_proxy(service.url, tls=self_signed_certificate(workdir))
    hold = Hold()
    fake_ollama.push(held_answer(hold))
    process = await asyncio.create_subprocess_exec(
        curl, "--http2", "--insecure", "--silent", "--show-error", "--no-buffer", "--max-time", "30",
        "--header", "Content-Type: application/json", "--data", json.dumps(CHAT),
        "--write-out", "\nhttp_version=%{http_version}\n",
        nginx.https_url + "/api/chat",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    assert process.stderr is not None
    try:
        received = b""
        async with asyncio.timeout(15):
            await hold.reached.wait()
            while b"event: token" not in received:
                chunk = await process.stdout.read(4096)
                assert chunk, "the stream ended before its first token"
                received += chunk
        assert not fake_ollama.requests[-1].finished
        hold.set()
        async with asyncio.timeout(30):
            received += await process.stdout.read()
            stderr = await process.stderr.read()
            assert await process.wait() == 0, stderr
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    text = received.decode()
    assert "event: done" in text
    assert re.search(r"^http_version=2$", text, re.MULTILINE), text[-200:]


# -- the site itself


def test_site_limits_match_the_services_defaults() -> None:
    site_text = (Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "llm-sse.conf").read_text()
    site = parse(site_text)
    limits = {d.name: d.args for _, d in walk(site) if d.name == "client_max_body_size"}
    assert limits["client_max_body_size"] == ["1m"]
    env = environment_file(ENV_EXAMPLE)
    assert int(env["LLM_SSE_MAX_BODY_BYTES"]) == Settings().max_body_bytes == 1024 * 1024
    chat = chat_location(site_text)
    for name, args in {
        "proxy_buffering": ["off"],
        "proxy_cache": ["off"],
        "gzip": ["off"],
    }.items():
        assert chat[name] == args, name
