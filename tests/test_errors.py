"""Failures: JSON errors with the right status before the stream, error frames after."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from tests.fakes.ollama import MODEL, Drop, Gate, Hang, Line, Raw, Script, done_line, token_lines
from tests.helpers import StreamRecords, naive_parse, read_frames, text_of

CHAT = {"messages": [{"role": "user", "content": "hi"}]}


async def error_of(response) -> dict:
    assert response.headers["Content-Type"].startswith("application/json")
    body = await response.json()
    assert set(body) == {"error"}
    assert {"code", "message"} <= set(body["error"])
    return body["error"]


# -- before the stream: JSON errors


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        (b"{not json", 400, "invalid_json", "body"),
        (b'{"prompt": 1}', 400, "invalid_request", "prompt"),
        (b'{"messages": [{"role": "robot", "content": "x"}]}', 400, "invalid_request", "messages[0].role"),
        (b'{"prompt": "x", "options": {"temperature": 5}}', 400, "invalid_request", "options.temperature"),
        (b'{"prompt": "x", "extra": 1}', 400, "invalid_request", "extra"),
    ],
)
async def test_invalid_requests_get_a_400_naming_the_problem(service, client, fake_ollama, body, status, code, field):
    async with client.post(
        service.url + "/api/chat", data=body, headers={"Content-Type": "application/json"}
    ) as response:
        assert response.status == status
        error = await error_of(response)
    assert error["code"] == code
    assert error.get("field") == field
    assert not fake_ollama.requests


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
async def test_a_body_that_is_not_json_gets_415(service, client, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    async with client.post(service.url + "/api/chat", data=b'{"prompt":"x"}', headers=headers) as response:
        assert response.status == 415
        assert (await error_of(response))["code"] == "unsupported_media_type"


async def test_json_with_a_charset_is_accepted(service, client):
    headers = {"Content-Type": "application/json; charset=utf-8"}
    async with client.post(service.url + "/api/chat", data=b'{"prompt":"x"}', headers=headers) as response:
        assert response.status == 200
        await response.read()


async def test_a_body_over_the_limit_gets_413_by_its_length(make_service, client):
    service = await make_service(max_body_bytes=2048)
    body = json.dumps({"prompt": "x" * 4000}).encode()
    async with client.post(service.url + "/api/chat", data=body, headers={"Content-Type": "application/json"}) as r:
        assert r.status == 413
        assert (await error_of(r))["code"] == "body_too_large"


async def test_a_chunked_body_over_the_limit_gets_413_while_it_is_read(make_service, client):
    service = await make_service(max_body_bytes=2048)

    async def chunks():
        yield b'{"prompt": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}'

    async with client.post(
        service.url + "/api/chat", data=chunks(), headers={"Content-Type": "application/json"}
    ) as response:
        assert response.status == 413
        assert (await error_of(response))["code"] == "body_too_large"


async def test_an_unknown_model_gets_404_from_ollamas_404(service, client, fake_ollama):
    async with client.post(service.url + "/api/chat", json={"prompt": "x", "model": "llama9:70b"}) as response:
        assert response.status == 404
        error = await error_of(response)
    assert error == {"code": "model_not_found", "message": "model 'llama9:70b' not found"}


async def test_ollama_error_status_before_the_stream_is_a_502_with_its_message(service, client, fake_ollama):
    message = "model runner has unexpectedly stopped, this may be due to resource limitations"
    fake_ollama.push(Script(status=500, error=message))
    async with client.post(service.url + "/api/chat", json=CHAT) as response:
        assert response.status == 502
        assert await error_of(response) == {"code": "upstream_error", "message": message}


async def test_ollama_busy_is_a_503_with_retry_after(service, client, fake_ollama):
    fake_ollama.push(Script(status=503, error="server busy, please try again.  maximum pending requests exceeded"))
    async with client.post(service.url + "/api/chat", json=CHAT) as response:
        assert response.status == 503
        assert response.headers["Retry-After"] == "1"
        assert (await error_of(response))["code"] == "upstream_busy"


async def test_ollama_bad_request_is_a_400_with_its_message(service, client, fake_ollama):
    fake_ollama.push(Script(status=400, error="json: cannot unmarshal string into Go struct field"))
    async with client.post(service.url + "/api/chat", json=CHAT) as response:
        assert response.status == 400
        assert (await error_of(response))["code"] == "upstream_rejected"


async def test_an_unreachable_upstream_is_a_502_that_names_no_address_but_logs_it(make_service, client, closed_port):
    service = await make_service(ollama_url=f"http://127.0.0.1:{closed_port}")
    records = StreamRecords(service.app)
    async with client.post(service.url + "/api/chat", json={"prompt": "x", "model": "m"}) as response:
        assert response.status == 502
        error = await error_of(response)
    assert error["code"] == "upstream_unavailable"
    assert error["message"] == "ollama is unreachable: Connection refused"
    [attempt] = (await records.next())["attempts"]
    assert f"upstream: http://127.0.0.1:{closed_port}/api/" in attempt  # the operator's log has it


async def test_a_connect_timeout_is_a_504(make_service, client, blackhole_port):
    service = await make_service(ollama_url=f"http://127.0.0.1:{blackhole_port}", connect_timeout=0.2)
    async with client.post(service.url + "/api/chat", json={"prompt": "x", "model": "m"}) as response:
        assert response.status == 504
        assert (await error_of(response))["code"] == "upstream_timeout"


async def test_no_first_token_before_any_heartbeat_is_a_504(make_service, client, fake_ollama):
    service = await make_service(first_token_timeout=0.2, heartbeat=30)
    fake_ollama.push(Script([Hang()]))
    async with client.post(service.url + "/api/chat", json=CHAT) as response:
        assert response.status == 504
        assert (await error_of(response))["code"] == "upstream_timeout"
    await asyncio.wait_for(fake_ollama.requests[0].disconnected.wait(), 5)


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/api/chat", 405, "method_not_allowed"),
        ("POST", "/api/nothing", 404, "not_found"),
        ("GET", "/no/such/page", 404, "not_found"),
        ("GET", "/../setup.cfg", 404, "not_found"),
    ],
)
async def test_unknown_routes_get_json_errors(service, client, method, path, status, code):
    async with client.request(method, service.url + path) as response:
        assert response.status == status
        assert (await error_of(response))["code"] == code


# -- after the stream started: error frames


async def test_an_error_line_mid_stream_becomes_an_error_frame_with_its_message(service, client, fake_ollama):
    fixture = (__import__("pathlib").Path(__file__).parent / "fixtures/ollama/midstream_error.ndjson").read_bytes()
    fake_ollama.push(Script([Raw(line) for line in fixture.splitlines(keepends=True)]))
    async with client.post(service.url + "/api/chat", json={"prompt": "x"}) as response:
        assert response.status == 200
        frames = await read_frames(response)
    assert text_of(frames) == " Yes.Ican"
    assert frames[-1].event == "error"
    assert frames[-1].data == {"code": "upstream_error", "message": "an error was encountered while running the model"}
    assert [f.event for f in frames].count("error") == 1
    assert "done" not in [f.event for f in frames]


async def test_an_upstream_drop_mid_stream_is_upstream_disconnected(service, client, fake_ollama):
    fake_ollama.push(Script([*token_lines(["partial"])[:-1], Drop()]))
    async with client.post(service.url + "/api/chat", json=CHAT) as response:
        frames = await read_frames(response)
    assert text_of(frames) == "partial"
    assert frames[-1].event == "error"
    assert frames[-1].data["code"] == "upstream_disconnected"


async def test_an_upstream_that_ends_without_its_done_line_is_upstream_disconnected(service, client, fake_ollama):
    fake_ollama.push(Script(token_lines(["partial"])[:-1]))
    async with client.post(service.url + "/api/chat", json=CHAT) as response:
        frames = await read_frames(response)
    assert frames[-1].data["code"] == "upstream_disconnected"


async def test_no_first_token_after_a_heartbeat_is_an_error_frame(make_service, client, fake_ollama):
    service = await make_service(first_token_timeout=0.3, heartbeat=0.05)
    fake_ollama.push(Script([Hang()]))
    async with client.post(service.url + "/api/chat", json=CHAT) as response:
        assert response.status == 200
        frames = await read_frames(response)
    assert [f.event for f in frames] == ["meta", "error"]
    assert frames[-1].data["code"] == "upstream_timeout"
    assert frames[0].data["provider"] == "ollama"
    await asyncio.wait_for(fake_ollama.requests[0].disconnected.wait(), 5)


async def test_silence_after_the_first_token_is_an_idle_timeout(make_service, client, fake_ollama):
    service = await make_service(idle_timeout=0.2, heartbeat=0.05)
    fake_ollama.push(Script([token_lines(["first"])[0], Hang()]))
    async with client.post(service.url + "/api/chat", json=CHAT) as response:
        frames = await read_frames(response)
    assert text_of(frames) == "first"
    assert frames[-1].event == "error"
    assert frames[-1].data["code"] == "upstream_timeout"
    await asyncio.wait_for(fake_ollama.requests[0].disconnected.wait(), 5)


async def test_a_slow_upstream_within_the_idle_timeout_is_not_cut(make_service, client, fake_ollama):
    """The idle timeout bounds each silence, not their sum.

    The service's own heartbeats measure the silences: a gate opens only once the
    client has seen four pings since the last token, so each pause lasts at least
    0.8 s as the service saw it and the two add up to more than the 1.5 s timeout,
    however late the gates open; each stays under the timeout unless the event
    loop stalls for 0.7 s.
    """
    service = await make_service(idle_timeout=1.5, heartbeat=0.2)
    gates = [asyncio.Event(), asyncio.Event()]
    steps = token_lines(["a", "b"])
    fake_ollama.push(Script([steps[0], Gate(gates[0]), steps[1], Gate(gates[1]), steps[2]]))
    async with client.post(service.url + "/api/chat", json=CHAT) as response:
        received = b""

        async def next_block() -> bytes:
            nonlocal received
            block = await asyncio.wait_for(response.content.readuntil(b"\n\n"), 10)
            received += block
            assert b"event: error" not in block, received
            return block

        for gate, token in zip(gates, (b'{"text":"a"}', b'{"text":"b"}'), strict=True):
            while token not in await next_block():
                pass
            pings = 0
            while pings < 4:
                pings += await next_block() == b": ping\n\n"
            gate.set()
        received += await response.content.read()
    frames = naive_parse(received.decode())
    assert [event for event, _ in frames] == ["meta", "token", "token", "done"]
    assert "".join(data["text"] for event, data in frames if event == "token") == "ab"


async def test_malformed_lines_are_skipped_counted_logged_and_reported(service, client, fake_ollama, caplog):
    steps = token_lines(["a", "b"])
    fake_ollama.push(Script([steps[0], Raw(b"<html>oops</html>\n"), Raw(b'{"truncated":\n'), steps[1], steps[2]]))
    with caplog.at_level(logging.INFO):
        async with client.post(service.url + "/api/chat", json=CHAT) as response:
            frames = await read_frames(response)
    assert text_of(frames) == "ab"
    assert frames[-1].event == "done"
    assert frames[-1].data["skipped_lines"] == 2
    skipped = [r for r in caplog.records if r.getMessage() == "skipped upstream lines"]
    assert sum(r.count for r in skipped) == 2
    line = next(r for r in caplog.records if r.name == "llm_sse.stream")
    assert line.fields["skipped_lines"] == 2


async def test_a_huge_upstream_line_is_an_error_not_unbounded_memory(make_service, client, fake_ollama):
    service = await make_service(max_line_bytes=4096)
    gate = asyncio.Event()
    fake_ollama.push(Script([token_lines(["a"])[0], Gate(gate), Raw(b'{"response":"' + b"x" * 10000)]))
    async with client.post(service.url + "/api/chat", json=CHAT) as response:
        gate.set()
        frames = await read_frames(response)
    assert frames[-1].event == "error"
    assert frames[-1].data["code"] == "upstream_protocol"


async def test_a_generate_done_line_with_a_large_context_fits(service, client, fake_ollama):
    done = done_line(chat=False)
    done["context"] = list(range(100_000))
    fake_ollama.push(Script([Line({"model": MODEL, "created_at": "x", "response": "ok", "done": False}), Line(done)]))
    async with client.post(service.url + "/api/chat", json={"prompt": "x"}) as response:
        frames = await read_frames(response)
    assert frames[-1].event == "done"
    assert text_of(frames) == "ok"
