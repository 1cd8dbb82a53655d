"""A stream's shape: headers, frames in order, routing to Ollama, real transcripts replayed."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.fakes.ollama import MODEL, Gate, Line, Raw, Script, done_line, token_lines
from tests.helpers import iter_frames, naive_parse, read_frames, text_of

FIXTURES = Path(__file__).parent / "fixtures" / "ollama"


def replay(name: str) -> list[Raw]:
    """A real transcript, written line by line as Ollama wrote it."""
    return [Raw(line) for line in (FIXTURES / name).read_bytes().splitlines(keepends=True)]


def fixture_lines(name: str) -> list[dict]:
    return [json.loads(line) for line in (FIXTURES / name).read_text().splitlines() if line.strip()]


async def test_headers_make_the_stream_unbuffered_and_uncompressed(service, client):
    async with client.post(
        service.url + "/api/chat", json={"prompt": "hi"}, headers={"Accept-Encoding": "gzip, deflate, br"}
    ) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/event-stream; charset=utf-8"
        assert response.headers["Cache-Control"] == "no-cache"
        assert response.headers["X-Accel-Buffering"] == "no"
        assert "Content-Encoding" not in response.headers
        assert "Content-Length" not in response.headers
        assert response.headers.get("Connection", "").lower() != "keep-alive" or response.version.minor == 1
        await response.read()


async def test_frames_are_meta_then_tokens_then_exactly_one_done_with_sequential_ids(service, client):
    async with client.post(service.url + "/api/chat", json={"prompt": "hi"}) as response:
        frames = await read_frames(response)
    assert frames[0].event == "meta"
    assert frames[0].data == {"id": frames[0].data["id"], "model": MODEL, "provider": "ollama"}
    assert len(frames[0].data["id"]) >= 22  # 128 bits, url-safe base64
    assert [f.event for f in frames[1:-1]] == ["token"] * (len(frames) - 2)
    assert frames[-1].event == "done"
    assert [f.id for f in frames] == [str(n) for n in range(1, len(frames) + 1)]
    assert text_of(frames) == "Hello from the fake model."


async def test_done_frame_carries_reason_usage_and_timing(service, client):
    async with client.post(service.url + "/api/chat", json={"prompt": "hi"}) as response:
        done = (await read_frames(response))[-1]
    assert done.data["finish_reason"] == "stop"
    assert done.data["usage"] == {"prompt_tokens": 26, "completion_tokens": 6}
    timing = done.data["timing"]
    assert timing["ttft_ms"] >= 0
    assert timing["total_ms"] >= timing["ttft_ms"]
    # Ollama's own decode time (eval_duration 0.25 s for 6 tokens) wins over our clock.
    assert timing["tokens_per_s"] == 24.0
    assert done.data["skipped_lines"] == 0


async def test_a_naive_reader_parses_every_frame(service, client, fake_ollama):
    fake_ollama.push(Script(token_lines(["line\none", " \u2028sep", " 你好", " <b>&"], chat=False)))
    async with client.post(service.url + "/api/chat", json={"prompt": "hi"}) as response:
        body = (await response.read()).decode()
    parsed = naive_parse(body)
    assert next(event for event, _ in parsed) == "meta"
    assert parsed[-1][0] == "done"
    assert "".join(d["text"] for e, d in parsed if e == "token") == "line\none \u2028sep 你好 <b>&"


async def test_messages_go_to_api_chat_and_prompt_to_api_generate(service, client, fake_ollama):
    history = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    async with client.post(service.url + "/api/chat", json={"messages": history}) as response:
        await response.read()
    async with client.post(service.url + "/api/chat", json={"prompt": "hi"}) as response:
        await response.read()
    chat, generate = fake_ollama.requests
    assert chat.path == "/api/chat"
    assert chat.body == {"model": MODEL, "stream": True, "messages": history}
    assert generate.path == "/api/generate"
    assert generate.body == {"model": MODEL, "stream": True, "prompt": "hi"}


async def test_model_options_and_think_are_passed_through(service, client, fake_ollama):
    body = {
        "prompt": "hi",
        "model": "qwen3:4b",
        "options": {"temperature": 0.2, "max_tokens": 64, "stop": "\n\n"},
        "think": True,
    }
    async with client.post(service.url + "/api/chat", json=body) as response:
        frames = await read_frames(response)
    sent = fake_ollama.requests[0].body
    assert sent["model"] == "qwen3:4b"
    assert sent["options"] == {"temperature": 0.2, "num_predict": 64, "stop": ["\n\n"]}
    assert sent["think"] is True
    assert frames[0].data["model"] == "qwen3:4b"


async def test_the_configured_default_model_is_used(make_service, client, fake_ollama):
    service = await make_service(model="qwen3:4b")
    async with client.post(service.url + "/api/chat", json={"prompt": "hi"}) as response:
        await response.read()
    assert fake_ollama.requests[0].body["model"] == "qwen3:4b"


async def test_real_chat_transcript_with_thinking_is_relayed(service, client, fake_ollama):
    fake_ollama.push(Script(replay("chat_stream.ndjson")))
    async with client.post(service.url + "/api/chat", json={"messages": [{"role": "user", "content": "你好"}]}) as r:
        frames = await read_frames(r)
    lines = fixture_lines("chat_stream.ndjson")
    assert text_of(frames, "thinking") == "".join(line["message"].get("thinking", "") for line in lines)
    assert text_of(frames) == "你好！今天有什么可以帮忙的吗？"
    kinds = [f.event for f in frames]
    assert kinds.index("token") > max(i for i, k in enumerate(kinds) if k == "thinking")
    assert frames[-1].data["usage"] == {"prompt_tokens": 68, "completion_tokens": 73}


@pytest.mark.parametrize(
    "name", ["generate_stream.ndjson", "generate_stream_cloud.ndjson", "generate_stream_thinking.ndjson"]
)
async def test_real_generate_transcripts_are_relayed_without_context(service, client, fake_ollama, name):
    fake_ollama.push(Script(replay(name)))
    async with client.post(service.url + "/api/chat", json={"prompt": "hi"}) as response:
        body = await response.read()
    frames = await _frames_of(body)
    lines = fixture_lines(name)
    assert text_of(frames) == "".join(line.get("response", "") for line in lines)
    assert text_of(frames, "thinking") == "".join(line.get("thinking", "") for line in lines)
    assert frames[-1].event == "done"
    assert frames[-1].data["usage"]["completion_tokens"] == lines[-1]["eval_count"]
    assert b"context" not in body


async def test_text_on_the_done_line_is_sent_before_done(service, client, fake_ollama):
    fake_ollama.push(Script(token_lines(["Hel"], last_text="lo")))
    async with client.post(service.url + "/api/chat", json={"messages": [{"role": "user", "content": "x"}]}) as r:
        frames = await read_frames(r)
    assert text_of(frames) == "Hello"
    assert frames[-1].event == "done"


@pytest.mark.parametrize("split", [1, 2, 3, 7])
async def test_lines_and_utf8_characters_split_across_writes_arrive_intact(service, client, fake_ollama, split):
    pieces = ["你好", "🦊", " naïve", " \u2028", " ok"]
    fake_ollama.push(Script(token_lines(pieces), split=split))
    async with client.post(service.url + "/api/chat", json={"messages": [{"role": "user", "content": "x"}]}) as r:
        frames = await read_frames(r)
    assert text_of(frames) == "".join(pieces)
    assert frames[-1].event == "done"


async def test_each_token_is_sent_as_soon_as_it_arrives(service, client, fake_ollama):
    gates = [asyncio.Event() for _ in range(3)]
    steps = token_lines(["one", " two", " three"])
    fake_ollama.push(Script([steps[0], Gate(gates[0]), steps[1], Gate(gates[1]), steps[2], Gate(gates[2]), steps[3]]))
    async with client.post(service.url + "/api/chat", json={"messages": [{"role": "user", "content": "x"}]}) as r:
        frames = iter_frames(r)
        assert (await anext(frames)).event == "meta"
        for gate, text in zip(gates, ["one", " two", " three"], strict=True):
            frame = await anext(frames)
            # The upstream is still holding the rest behind a gate.
            assert (frame.event, frame.data["text"]) == ("token", text)
            gate.set()
        assert (await anext(frames)).event == "done"


async def test_heartbeats_are_sent_while_the_upstream_is_silent(make_service, client, fake_ollama):
    service = await make_service(heartbeat=0.05)
    gate = asyncio.Event()
    steps = token_lines(["a"])
    fake_ollama.push(Script([Gate(gate), *steps]))
    async with client.post(service.url + "/api/chat", json={"messages": [{"role": "user", "content": "x"}]}) as r:
        assert r.status == 200  # the first heartbeat committed the stream
        first = await r.content.readuntil(b"\n\n")
        second = await r.content.readuntil(b"\n\n")
        assert first == second == b": ping\n\n"
        gate.set()
        rest = (await r.read()).decode()
    assert "event: meta" in rest
    assert rest.rstrip().split("\n\n")[-1].startswith("event: done")


async def test_no_ping_ever_follows_the_terminal_frame(make_service, client, fake_ollama):
    service = await make_service(heartbeat=0.01)
    for _ in range(20):
        async with client.post(service.url + "/api/chat", json={"prompt": "x"}) as response:
            body = (await response.read()).decode()
        assert body.rstrip("\n").split("\n\n")[-1].startswith("event: done"), body[-200:]


async def test_models_lists_the_upstream_models_tagged_with_their_provider(service, client):
    async with client.get(service.url + "/api/models") as response:
        assert response.status == 200
        data = await response.json()
    assert [m["name"] for m in data["models"]] == [MODEL, "qwen3:4b"]
    assert {m["provider"] for m in data["models"]} == {"ollama"}
    assert data["default"] == MODEL
    assert data["errors"] == []


async def test_health_and_readiness(service, client, fake_ollama):
    async with client.get(service.url + "/healthz") as response:
        assert response.status == 200
        assert (await response.json())["status"] == "ok"
    async with client.get(service.url + "/readyz") as response:
        assert response.status == 200
        body = await response.json()
    assert body["providers"][0]["ready"] is True
    assert "0.5.1" in body["providers"][0]["detail"]
    await fake_ollama.close()
    async with client.get(service.url + "/readyz") as response:
        assert response.status == 503
        assert (await response.json())["providers"][0]["ready"] is False


async def test_ollamas_html_escaping_is_undone(service, client, fake_ollama):
    # Go's encoder sends "<" as \u003c; the client must see the character.
    fake_ollama.push(
        Script(
            [
                Line({"model": MODEL, "created_at": "x", "response": "<a> & b", "done": False}),
                Line(done_line(chat=False)),
            ]
        )
    )
    async with client.post(service.url + "/api/chat", json={"prompt": "x"}) as response:
        assert text_of(await read_frames(response)) == "<a> & b"


async def _frames_of(body: bytes):
    from sse.eventstream import EventStreamDecoder
    from tests.helpers import Frame

    decoder = EventStreamDecoder()
    return [Frame.of(e) for e in decoder.feed(body) + decoder.close()]
