"""The connection's edges against hostile or broken clients, over real sockets.

Bytes that are not valid HTTP get a JSON 400 and one quiet log line that
never quotes them (they may carry an API key or a resume token); idle and
half-sent connections are closed; ``100 Continue`` is sent only once the
headers have passed; a body that is not UTF-8 is a 400; a refused endless
body is not read on; a draining instance closes a proxy's request unanswered
so the proxy tries the next one; the public readiness answer names no
internal address.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from sse.http_edges import KEEPALIVE_TIMEOUT, EdgeRunner, runner_options
from sse.settings import Settings
from sse.web.app import create_app
from sse.web.keys import REGISTRY
from tests.deploy.process import start_app
from tests.fakes.ollama import FakeOllama
from tests.helpers import Service, eventually, read_frames

MakeService = Callable[..., Awaitable[Service]]
CHAT = {"messages": [{"role": "user", "content": "hi"}]}
KEY = "k3y-0123456789abcdef-SECRET"
TOKEN = "t0ken-0123456789abcdef-SECRET"


async def exchange(url: str, raw: bytes, *, within: float = 10.0) -> bytes:
    """Send ``raw`` on a new connection; everything the server answers until it closes."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(raw)
        await writer.drain()
        async with asyncio.timeout(within):
            return await reader.read()
    finally:
        writer.close()


def head_and_body(answer: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every record of every logger, aiohttp's included, at every level."""
    caplog.set_level(logging.DEBUG)
    return caplog


def everything_logged(caplog: pytest.LogCaptureFixture) -> str:
    """All records as a log file would hold them: messages, fields, tracebacks."""
    formatter = logging.Formatter("%(levelname)s %(name)s %(message)s")
    out = []
    for record in caplog.records:
        out.append(formatter.format(record))
        out.append(repr(getattr(record, "fields", "")))
        out.append(repr(record.args))
    return "\n".join(out)


# -- malformed HTTP: never a secret in a log, a JSON 400, one quiet line


BAD_HEADER_LINES = [
    f"Authorization: Bearer {KEY}\x7f".encode(),
    f"Authorization: Bearer {KEY}\x1b[31m".encode(),
    f"X-Resume-Token: {TOKEN}\x01".encode(),
    f"X-Resume-Token: {TOKEN}\x00".encode(),
]


@pytest.mark.parametrize("line", BAD_HEADER_LINES, ids=["DEL", "ESC", "SOH", "NUL"])
async def test_a_header_line_with_a_bad_byte_gets_a_json_400_and_never_reaches_the_log(
    make_service: MakeService, all_logs: pytest.LogCaptureFixture, line: bytes
) -> None:
    service = await make_service(api_keys=KEY)
    request = b"POST /api/chat HTTP/1.1\r\nHost: x\r\n" + line + b"\r\nContent-Length: 2\r\n\r\n{}"
    status, headers, body = head_and_body(await exchange(service.url, request))
    assert status == 400
    assert headers["content-type"].startswith("application/json")
    error = json.loads(body)["error"]
    assert error["code"] == "bad_request"
    assert "SECRET" not in error["message"]
    logged = everything_logged(all_logs)
    assert "SECRET" not in logged
    assert not [r for r in all_logs.records if r.levelno >= logging.WARNING]
    [quiet] = [r for r in all_logs.records if r.getMessage() == "malformed request"]
    assert quiet.levelno == logging.INFO
    assert quiet.exc_info is None
    assert quiet.fields["status"] == 400  # type: ignore[attr-defined]


async def test_a_malformed_request_line_gets_a_json_400(service: Service, all_logs: pytest.LogCaptureFixture) -> None:
    status, headers, body = head_and_body(
        await exchange(service.url, b"GET /?token=" + TOKEN.encode() + b" HTTP/1.1 extra\r\nHost: x\r\n\r\n")
    )
    assert status == 400
    assert json.loads(body)["error"]["code"] == "bad_request"
    assert headers["content-type"].startswith("application/json")
    assert "SECRET" not in everything_logged(all_logs)
    assert not [r for r in all_logs.records if r.levelno >= logging.WARNING or r.exc_info]


# -- idle connections and half-sent request heads


@pytest.fixture
async def short_keepalive_service(fake_ollama: FakeOllama) -> AsyncIterator[str]:
    """The service on the edge runner with its keep-alive shortened to 0.3 s (the default is 75 s)."""
    app = create_app(Settings(provider="ollama", ollama_url=fake_ollama.url, port=0))
    options = {**runner_options(), "keepalive_timeout": 0.3}
    runner = EdgeRunner(app, handler_cancellation=True, access_log=None, **options)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


@pytest.mark.parametrize(
    "sent",
    [b"", b"GET /hea", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Half: "],
    ids=["nothing", "half-a-request-line", "half-a-head"],
)
async def test_a_connection_that_goes_silent_before_its_request_is_whole_is_closed(
    short_keepalive_service: str, sent: bytes
) -> None:
    assert await exchange(short_keepalive_service, sent) == b""  # closed, nothing answered


async def test_an_idle_kept_alive_connection_is_closed_after_the_keepalive_timeout(
    short_keepalive_service: str,
) -> None:
    answer = await exchange(short_keepalive_service, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    status, headers, _ = head_and_body(answer)
    assert status == 200
    assert headers.get("connection", "keep-alive").lower() != "close"  # kept alive, then closed when idle


async def test_the_services_runner_keeps_idle_connections_75_s_not_an_hour(service: Service) -> None:
    assert KEEPALIVE_TIMEOUT == 75.0
    host, port = service.url.removeprefix("http://").split(":")
    _, writer = await asyncio.open_connection(host, int(port))
    try:
        server = service.runner.server
        assert server is not None
        await eventually(lambda: bool(server.connections))  # the server has taken the connection
        assert {c.keepalive_timeout for c in server.connections} == {KEEPALIVE_TIMEOUT}
    finally:
        writer.close()


# -- Expect: 100-continue only once the headers have passed


async def first_answer_to_expect(url: str, headers: dict[str, str], path: str = "/api/chat") -> bytes:
    """Send only the head of a POST with ``Expect: 100-continue``; the first line answered."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        lines = [f"POST {path} HTTP/1.1", "Host: x", "Expect: 100-continue"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
        async with asyncio.timeout(10):
            return await reader.readline()
    finally:
        writer.close()


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Content-Type": "application/json", "Content-Length": "20"}, 401),
        ({"Authorization": f"Bearer {KEY}", "Content-Type": "text/plain", "Content-Length": "20"}, 415),
        (
            {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json", "Content-Encoding": "gzip"},
            415,
        ),
        ({"Authorization": f"Bearer {KEY}", "Content-Type": "application/json", "Content-Length": "999999"}, 413),
    ],
    ids=["no-key", "not-json", "compressed", "too-long"],
)
async def test_no_100_continue_before_a_refusal_the_headers_decide(
    make_service: MakeService, fake_ollama: FakeOllama, headers: dict[str, str], status: int
) -> None:
    service = await make_service(api_keys=KEY, max_body_bytes=65536)
    first = await first_answer_to_expect(service.url, headers)
    assert first.startswith(f"HTTP/1.1 {status} ".encode()), first
    assert not fake_ollama.requests


async def test_100_continue_comes_once_the_headers_passed_and_the_body_is_then_read(
    make_service: MakeService,
) -> None:
    service = await make_service(api_keys=KEY)
    body = json.dumps(CHAT).encode()
    host, port = service.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        head = (
            "POST /api/chat HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nConnection: close\r\n"
            f"Authorization: Bearer {KEY}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        writer.write(head.encode())
        async with asyncio.timeout(10):
            assert await reader.readline() == b"HTTP/1.1 100 Continue\r\n"
            assert await reader.readline() == b"\r\n"
            writer.write(body)
            answer = await reader.read()
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"event: done" in answer
    assert answer.count(b"100 Continue") == 0


async def test_expect_100_continue_from_an_http_client_still_streams(
    make_service: MakeService, client: aiohttp.ClientSession
) -> None:
    service = await make_service(api_keys=KEY)
    headers = {"Authorization": f"Bearer {KEY}"}
    async with client.post(service.url + "/api/chat", json=CHAT, headers=headers, expect100=True) as response:
        assert response.status == 200
        assert (await read_frames(response))[-1].event == "done"


# -- bodies that are not UTF-8


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"])
async def test_a_utf16_or_utf32_body_is_a_400(
    service: Service, client: aiohttp.ClientSession, fake_ollama: FakeOllama, encoding: str
) -> None:
    body = json.dumps(CHAT).encode(encoding)
    headers = {"Content-Type": "application/json"}
    async with client.post(service.url + "/api/chat", data=body, headers=headers) as response:
        assert response.status == 400
        error = (await response.json())["error"]
    assert (error["code"], error["field"]) == ("invalid_json", "body")
    assert "UTF-8" in error["message"]
    assert not fake_ollama.requests


async def test_a_utf8_body_with_a_byte_order_mark_is_still_read(
    service: Service, client: aiohttp.ClientSession
) -> None:
    body = json.dumps(CHAT).encode("utf-8-sig")
    async with client.post(service.url + "/api/chat", data=body, headers={"Content-Type": "application/json"}) as r:
        assert r.status == 200
        assert (await read_frames(r))[-1].event == "done"


# -- an endless body after its 413


async def read_until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends before it closes (a reset, when it closed with our bytes unread)."""
    answer = bytearray()
    try:
        while chunk := await reader.read(65536):
            answer += chunk
    except ConnectionResetError:
        pass
    return bytes(answer)


async def test_after_a_413_on_an_endless_chunked_body_the_connection_is_closed_not_read_on(
    make_service: MakeService,
) -> None:
    """aiohttp went on reading and discarding for 10 s (gigabytes on loopback); now it closes at once."""
    service = await make_service(max_body_bytes=65536)
    host, port = service.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    chunk = b"4000\r\n" + b" " * 0x4000 + b"\r\n"
    cap = 512 * 1024 * 1024  # never sent: the server stops reading long before
    sent = 0

    async def send_forever() -> None:
        nonlocal sent
        writer.write(
            b"POST /api/chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        while sent < cap:
            writer.write(chunk)
            await writer.drain()
            sent += len(chunk)

    sender = asyncio.create_task(send_forever())
    try:
        async with asyncio.timeout(30):
            answer = await read_until_closed(reader)
            with pytest.raises(ConnectionError):
                await sender
    finally:
        sender.cancel()
        writer.close()
    status, _, body = head_and_body(answer)
    assert status == 413
    assert json.loads(body)["error"]["code"] == "body_too_large"
    assert sent < 64 * 1024 * 1024


# -- a draining instance and its proxy


async def test_a_draining_instance_closes_a_trusted_proxys_request_unanswered(
    make_service: MakeService, client: aiohttp.ClientSession, fake_ollama: FakeOllama
) -> None:
    """What makes nginx try the next instance; nginx's own 503 answers when none is left."""
    service = await make_service(trusted_proxies="127.0.0.1")
    service.app[REGISTRY].draining = True
    with pytest.raises(aiohttp.ServerDisconnectedError):
        async with client.post(service.url + "/api/chat", json=CHAT) as response:
            await response.read()
    with pytest.raises(aiohttp.ServerDisconnectedError):
        async with client.get(service.url + "/api/streams/AAAAAAAAAAAAAAAAAAAAAA?token=x") as response:
            await response.read()
    assert not fake_ollama.requests


async def test_a_draining_instance_answers_a_direct_client_503_shutting_down(
    service: Service, client: aiohttp.ClientSession
) -> None:
    service.app[REGISTRY].draining = True
    async with client.post(service.url + "/api/chat", json=CHAT) as response:
        assert response.status == 503
        assert response.headers["Retry-After"] == "1"
        assert (await response.json())["error"]["code"] == "shutting_down"


# -- readiness names no internal address to the public


async def test_readiness_details_go_only_to_a_caller_on_this_machine(
    make_service: MakeService, client: aiohttp.ClientSession, fake_ollama: FakeOllama
) -> None:
    service = await make_service(trusted_proxies="127.0.0.1")
    address = fake_ollama.url.removeprefix("http://")
    async with client.get(service.url + "/readyz") as local:
        assert local.status == 200
        assert address in (await local.text())  # the operator on the box sees where the model server is
    async with client.get(service.url + "/readyz", headers={"X-Forwarded-For": "203.0.113.9"}) as public:
        assert public.status == 200
        text = await public.text()
        body: dict[str, Any] = json.loads(text)
    assert address not in text
    assert "127.0.0.1" not in text
    assert body["status"] == "ready"
    assert body["providers"] == [{"provider": "ollama", "ready": True}]


async def test_the_running_service_writes_no_key_and_no_traceback_for_a_bad_header_line(
    fake_ollama: FakeOllama,
) -> None:
    """The whole process, as systemd runs it: every line of its stderr, from every layer."""
    app = await start_app(["--provider", "ollama", "--ollama-url", fake_ollama.url], {"LLM_SSE_API_KEYS": KEY})
    try:
        for line in BAD_HEADER_LINES:
            request = b"GET /api/models HTTP/1.1\r\nHost: x\r\n" + line + b"\r\n\r\n"
            status, _, _ = head_and_body(await exchange(app.url, request))
            assert status == 400
        await app.wait_log(
            lambda _: sum(line.get("msg") == "malformed request" for line in app.lines) == len(BAD_HEADER_LINES)
        )
        quiet = [line for line in app.lines if line.get("msg") == "malformed request"]
        assert len(quiet) == len(BAD_HEADER_LINES)
        assert {line["level"] for line in quiet} == {"info"}
        assert not any("exc" in line for line in app.lines)
        assert "SECRET" not in "\n".join(app.raw)
    finally:
        await app.stop()
