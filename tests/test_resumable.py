"""Resumable streams on one instance: drop, resume, replay, expiry, cancel, the grace window."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest

from sse.web.keys import RESUMABLE
from tests.fakes.ollama import FakeOllama, Hang, Script, token_lines
from tests.helpers import MakeService, Service, StreamRecords, eventually, iter_frames, read_frames, text_of
from tests.resumable import (
    ASK,
    DISCONNECT_WAIT,
    RESUMABLE_ASK,
    WORDS,
    assert_contiguous,
    drop,
    held_script,
    read_until,
    resume,
    resume_headers,
)


async def test_a_dropped_connection_resumes_after_its_last_event_id_with_nothing_missing_or_twice(
    service: Service, client: aiohttp.ClientSession, fake_ollama: FakeOllama
) -> None:
    before, during = asyncio.Event(), asyncio.Event()
    fake_ollama.push(held_script(WORDS, (10, before), (20, during)))
    response = await client.post(service.url + "/api/chat", json=RESUMABLE_ASK)
    first = await read_until(iter_frames(response), " w9")
    meta = first[0].data
    drop(response)
    # The answer goes on with nobody connected ...
    before.set()
    upstream = fake_ollama.requests[-1]
    await eventually(lambda: upstream.lines_sent >= 20)
    assert not upstream.disconnected.is_set()
    # ... and the client picks it up where it left off.
    async with client.get(service.url + meta["resume"]["url"], headers=resume_headers(meta, first[-1].id)) as again:
        assert again.status == 200
        assert again.headers["Content-Type"] == "text/event-stream; charset=utf-8"
        assert again.headers["X-Accel-Buffering"] == "no"
        rest_frames = iter_frames(again)
        rest = await read_until(rest_frames, " w19")
        during.set()
        rest += [frame async for frame in rest_frames]
    whole = first + rest
    assert_contiguous(whole)
    assert text_of(whole) == "".join(WORDS)
    assert whole[-1].event == "done"
    assert [f.event for f in whole].count("meta") == 1


async def test_the_token_comes_only_with_the_first_meta_and_a_replay_from_the_start_has_everything(
    service: Service, client: aiohttp.ClientSession
) -> None:
    async with client.post(service.url + "/api/chat", json=RESUMABLE_ASK) as response:
        frames = await read_frames(response)
    meta = frames[0].data
    assert meta["resume"]["url"] == f"/api/streams/{meta['id']}"
    assert len(meta["resume"]["token"]) >= 43  # 256 bits, URL-safe base64
    status, replay = await resume(client, service, meta, 0)
    assert status == 200
    assert [(f.event, f.id) for f in replay] == [(f.event, f.id) for f in frames]
    assert replay[0].data == {**meta, "resume": {"url": meta["resume"]["url"]}}
    assert replay[1:] == frames[1:]


async def test_a_resume_after_the_end_gets_the_remaining_frames_and_the_terminal_one(
    service: Service, client: aiohttp.ClientSession, fake_ollama: FakeOllama
) -> None:
    fake_ollama.push(Script(token_lines(WORDS)))
    async with client.post(service.url + "/api/chat", json=RESUMABLE_ASK) as response:
        frames = await read_frames(response)
    assert frames[-1].event == "done"
    meta = frames[0].data
    status, rest = await resume(client, service, meta, 1)
    assert status == 200
    assert rest == frames[1:]
    status, last = await resume(client, service, meta, frames[-2].id)
    assert (status, last) == (200, frames[-1:])


async def test_a_resume_from_the_terminal_frame_gets_204_so_an_eventsource_stops(
    service: Service, client: aiohttp.ClientSession
) -> None:
    async with client.post(service.url + "/api/chat", json=RESUMABLE_ASK) as response:
        frames = await read_frames(response)
    status, _ = await resume(client, service, frames[0].data, frames[-1].id)
    assert status == 204


async def test_the_id_can_also_come_as_after_and_the_token_as_a_query_parameter(
    service: Service, client: aiohttp.ClientSession
) -> None:
    async with client.post(service.url + "/api/chat", json=RESUMABLE_ASK) as response:
        frames = await read_frames(response)
    meta = frames[0].data
    url = f"{service.url}{meta['resume']['url']}?token={meta['resume']['token']}&after=1"
    async with client.get(url) as again:
        assert again.status == 200
        assert await read_frames(again) == frames[1:]
    # Last-Event-ID (what a reconnecting EventSource sends) wins over ?after=.
    async with client.get(url, headers={"Last-Event-ID": frames[-2].id}) as again:
        assert await read_frames(again) == frames[-1:]


@pytest.mark.parametrize(
    ("given", "status", "code"),
    [
        ("unknown id", 404, "stream_not_found"),
        ("wrong token", 404, "stream_not_found"),
        ("no token", 401, "resume_token_required"),
        ("bad id", 400, "invalid_request"),
    ],
)
async def test_a_resume_that_cannot_be_served_gets_a_json_error_before_any_stream(
    service: Service, client: aiohttp.ClientSession, given: str, status: int, code: str
) -> None:
    async with client.post(service.url + "/api/chat", json=RESUMABLE_ASK) as response:
        meta = (await read_frames(response))[0].data
    url = service.url + meta["resume"]["url"]
    headers = resume_headers(meta, 1)
    if given == "unknown id":
        url = service.url + "/api/streams/" + "A" * 22
    elif given == "wrong token":
        headers["X-Resume-Token"] = headers["X-Resume-Token"][:-2] + "xx"
    elif given == "no token":
        del headers["X-Resume-Token"]
    elif given == "bad id":
        headers["Last-Event-ID"] = "12abc"
    async with client.get(url, headers=headers) as again:
        assert again.status == status
        assert again.content_type == "application/json"
        assert (await again.json())["error"]["code"] == code


async def test_a_stream_past_its_retention_is_gone_with_a_404(
    make_service: MakeService, client: aiohttp.ClientSession
) -> None:
    service = await make_service(resume_retention=0.2)
    async with client.post(service.url + "/api/chat", json=RESUMABLE_ASK) as response:
        meta = (await read_frames(response))[0].data
    streams = service.app[RESUMABLE]
    await eventually(lambda: streams.held == 0)
    status, body = await resume(client, service, meta, 1)
    assert status == 404
    assert body["error"]["code"] == "stream_not_found"


async def test_a_resume_from_before_evicted_frames_gets_410_naming_them(
    make_service: MakeService, client: aiohttp.ClientSession, fake_ollama: FakeOllama
) -> None:
    service = await make_service(resume_max_frames=4)
    gates = [asyncio.Event() for _ in WORDS]
    # One frame per word: the upstream is held before each.
    fake_ollama.push(held_script(WORDS, *((i, gates[i]) for i in range(1, len(WORDS)))))
    async with client.post(service.url + "/api/chat", json=RESUMABLE_ASK) as response:
        frames_in = iter_frames(response)
        frames = [await anext(frames_in), await anext(frames_in)]
        for gate in gates[1:]:
            gate.set()
            frames.append(await anext(frames_in))
        frames += [frame async for frame in frames_in]
    assert_contiguous(frames)
    assert frames[-1].event == "done"
    last = int(frames[-1].id)  # 32: meta, 30 words, done; frames 29-32 are kept, and meta
    meta = frames[0].data
    status, body = await resume(client, service, meta, 5)
    assert status == 410
    assert body["error"]["code"] == "frames_expired"
    assert body["error"]["message"].startswith(f"frames 6 to {last - 4} are no longer kept")
    status, body = await resume(client, service, meta, 0)
    assert status == 410
    assert "frames 2 to" in body["error"]["message"]
    status, rest = await resume(client, service, meta, last - 4)
    assert status == 200
    assert rest == frames[-4:]


async def test_cancel_while_disconnected_closes_the_upstream_and_ends_the_stream_as_cancelled(
    service: Service, client: aiohttp.ClientSession, fake_ollama: FakeOllama
) -> None:
    records = StreamRecords(service.app)
    fake_ollama.push(Script([*token_lines(["Partial"])[:1], Hang()]))
    response = await client.post(service.url + "/api/chat", json=RESUMABLE_ASK)
    frames = await read_until(iter_frames(response), "Partial")
    meta = frames[0].data
    drop(response)
    upstream = fake_ollama.requests[-1]
    assert not upstream.disconnected.is_set()  # resumable: the drop alone does not stop it
    async with client.post(service.url + meta["resume"]["url"] + "/cancel", headers=resume_headers(meta)) as cancelled:
        assert cancelled.status == 200
        assert await cancelled.json() == {"id": meta["id"], "status": "cancelled"}
    await asyncio.wait_for(upstream.disconnected.wait(), DISCONNECT_WAIT)
    assert (await records.next())["outcome"] == "cancelled"
    status, rest = await resume(client, service, meta, frames[-1].id)
    assert status == 200
    assert [f.event for f in rest] == ["error"]
    assert rest[0].data["code"] == "cancelled"
    # Cancelling again is harmless and says so.
    async with client.post(service.url + meta["resume"]["url"] + "/cancel", headers=resume_headers(meta)) as again:
        assert await again.json() == {"id": meta["id"], "status": "ended"}


async def test_cancel_needs_the_streams_token(service: Service, client: aiohttp.ClientSession, fake_ollama) -> None:
    fake_ollama.push(Script([*token_lines(["Partial"])[:1], Hang()]))
    response = await client.post(service.url + "/api/chat", json=RESUMABLE_ASK)
    meta = (await read_until(iter_frames(response), "Partial"))[0].data
    url = service.url + meta["resume"]["url"] + "/cancel"
    async with client.post(url) as refused:
        assert refused.status == 401
    async with client.post(url, headers={"X-Resume-Token": "not-the-token"}) as refused:
        assert refused.status == 404
    assert not fake_ollama.requests[-1].disconnected.is_set()
    response.close()


async def test_with_no_follower_for_the_grace_window_the_upstream_is_closed(
    make_service: MakeService, client: aiohttp.ClientSession, fake_ollama: FakeOllama
) -> None:
    service = await make_service(resume_grace=0.3)
    records = StreamRecords(service.app)
    fake_ollama.push(Script([*token_lines(["Partial"])[:1], Hang()]))
    response = await client.post(service.url + "/api/chat", json=RESUMABLE_ASK)
    frames = await read_until(iter_frames(response), "Partial")
    drop(response)
    upstream = fake_ollama.requests[-1]
    await asyncio.wait_for(upstream.disconnected.wait(), DISCONNECT_WAIT)
    record = await records.next()
    assert record["outcome"] == "abandoned"
    assert record["resumable"] is True
    status, rest = await resume(client, service, frames[0].data, frames[-1].id)
    assert status == 200
    assert [f.event for f in rest] == ["error"]
    assert rest[0].data == {"code": "abandoned", "message": "no client followed the stream for 0.3 s"}


async def test_a_follower_arriving_within_the_grace_window_keeps_the_stream_going(
    make_service: MakeService, client: aiohttp.ClientSession, fake_ollama: FakeOllama
) -> None:
    service = await make_service(resume_grace=0.5)
    gate = asyncio.Event()
    fake_ollama.push(held_script(WORDS, (10, gate)))
    response = await client.post(service.url + "/api/chat", json=RESUMABLE_ASK)
    first = await read_until(iter_frames(response), " w9")
    drop(response)
    meta = first[0].data
    async with client.get(service.url + meta["resume"]["url"], headers=resume_headers(meta, first[-1].id)) as again:
        rest_frames = iter_frames(again)
        # Longer than the grace window (the requirement is about time), a follower connected throughout.
        await asyncio.sleep(1.5)
        gate.set()
        rest = [frame async for frame in rest_frames]
    assert rest[-1].event == "done"
    assert text_of(first + rest) == "".join(WORDS)


async def test_a_client_that_leaves_before_meta_stops_the_upstream_at_once(
    service: Service, fake_ollama: FakeOllama
) -> None:
    """Without meta it has no token and can never resume: waiting for it would only burn the GPU."""
    fake_ollama.push(Script([Hang()]))  # a model still loading
    async with aiohttp.ClientSession() as session:
        pending = asyncio.create_task(session.post(service.url + "/api/chat", json=RESUMABLE_ASK))
        await eventually(lambda: fake_ollama.requests)
        pending.cancel()
    await asyncio.wait_for(fake_ollama.requests[-1].disconnected.wait(), DISCONNECT_WAIT)


async def test_an_upstream_that_fails_before_any_event_still_gets_its_status_and_json(
    service: Service, client: aiohttp.ClientSession
) -> None:
    body = {**RESUMABLE_ASK, "model": "no-such-model"}
    async with client.post(service.url + "/api/chat", json=body) as response:
        assert response.status == 404
        assert (await response.json())["error"]["code"] == "model_not_found"


async def test_the_server_default_makes_streams_resumable_and_a_request_can_say_no(
    make_service: MakeService, client: aiohttp.ClientSession
) -> None:
    service = await make_service(resumable=True)
    async with client.post(service.url + "/api/chat", json=ASK) as response:
        assert "resume" in (await read_frames(response))[0].data
    async with client.post(service.url + "/api/chat", json={**ASK, "resumable": False}) as response:
        assert "resume" not in (await read_frames(response))[0].data


async def test_a_resumed_follower_gets_heartbeats_while_the_upstream_is_silent(
    make_service: MakeService, client: aiohttp.ClientSession, fake_ollama: FakeOllama
) -> None:
    service = await make_service(heartbeat=0.2)
    gate = asyncio.Event()
    fake_ollama.push(held_script(WORDS, (3, gate)))
    response = await client.post(service.url + "/api/chat", json=RESUMABLE_ASK)
    first = await read_until(iter_frames(response), " w2")
    drop(response)
    meta = first[0].data
    async with client.get(service.url + meta["resume"]["url"], headers=resume_headers(meta, first[-1].id)) as again:
        assert await again.content.readuntil(b"\n\n") == b"retry: 1000\n\n"
        assert await again.content.readuntil(b"\n\n") == b": ping\n\n"
        gate.set()
        rest = await read_frames(again)
    assert text_of(first + rest) == "".join(WORDS)


async def test_every_follower_is_logged_and_the_stream_once(
    service: Service, client: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        async with client.post(service.url + "/api/chat", json=RESUMABLE_ASK) as response:
            frames = await read_frames(response)
        await resume(client, service, frames[0].data, 1)
        await eventually(lambda: len([r for r in caplog.records if r.name == "llm_sse.follower"]) == 2)
    followers = [r for r in caplog.records if r.name == "llm_sse.follower"]
    assert [(r.kind, r.outcome) for r in followers] == [("post", "done"), ("resume", "done")]  # type: ignore[attr-defined]
    streams = [r for r in caplog.records if r.name == "llm_sse.stream"]
    assert len(streams) == 1
    assert streams[0].fields["outcome"] == "done"  # type: ignore[attr-defined]
    # The token is in no log line.
    token = frames[0].data["resume"]["token"]
    assert all(token not in record.getMessage() + str(vars(record)) for record in caplog.records)


async def test_a_resume_from_beyond_the_last_frame_ends_when_the_stream_does(
    service: Service, client: aiohttp.ClientSession, fake_ollama: FakeOllama
) -> None:
    """A Last-Event-ID past the end used to spin the event loop once the stream had ended."""
    gate = asyncio.Event()
    fake_ollama.push(held_script(WORDS, (3, gate)))
    response = await client.post(service.url + "/api/chat", json=RESUMABLE_ASK)
    meta = (await read_until(iter_frames(response), " w2"))[0].data
    async with client.get(service.url + meta["resume"]["url"], headers=resume_headers(meta, 999)) as beyond:
        assert await beyond.content.readuntil(b"\n\n") == b"retry: 1000\n\n"
        gate.set()
        async with asyncio.timeout(10):
            assert await read_frames(beyond) == []
    response.close()
