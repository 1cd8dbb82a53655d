"""/metrics in Prometheus format, and agreement with the stream log lines."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from sse.metrics import NoMetrics
from sse.settings import Settings
from sse.web.app import create_app, make_runner
from sse.web.keys import METRICS, REGISTRY
from tests.fakes.ollama import Hang, Line, Raw, Script, token_lines
from tests.helpers import eventually, iter_frames, read_frames

CHAT = {"messages": [{"role": "user", "content": "hi"}]}


async def scrape(client, url: str) -> dict[tuple[str, tuple], float]:
    async with client.get(url + "/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await response.text()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels: str) -> float:
    """One sample's value; a sample that is not exposed at all is an error, not a zero."""
    key = (name, tuple(sorted(labels.items())))
    if key not in samples:
        exposed = sorted(str(dict(found)) for sample, found in samples if sample == name)
        raise AssertionError(f"{name}{dict(labels)} is not exposed; exposed {name} samples: {exposed}")
    return samples[key]


async def test_streams_show_up_alike_in_the_log_lines_and_the_metrics(make_service, client, fake_ollama, caplog):
    caplog.set_level(logging.INFO)
    service = await make_service(heartbeat=0.05)
    # done, done with a skipped line, an upstream error, a cancel, a refusal before any stream
    fake_ollama.push(Script(token_lines(["a", "b", "c"])))
    steps = token_lines(["d"])
    fake_ollama.push(Script([steps[0], Raw(b"garbage\n"), steps[1]]))
    fake_ollama.push(Script([*token_lines(["e"])[:-1], Line({"error": "boom"})]))
    fake_ollama.push(Script([token_lines(["f"])[0], Hang()]))
    for _ in range(3):
        async with client.post(service.url + "/api/chat", json=CHAT) as response:
            await response.read()
    response = await client.post(service.url + "/api/chat", json=CHAT)
    frames = iter_frames(response)
    await anext(frames)
    await anext(frames)
    response.close()
    async with client.post(service.url + "/api/chat", json={"prompt": "x", "model": "missing"}) as response:
        assert response.status == 404
    async with client.post(service.url + "/api/chat", json={"promt": "x"}) as response:
        assert response.status == 400
    await eventually(lambda: len([r for r in caplog.records if r.name == "llm_sse.stream"]) == 5)

    lines = [r.fields for r in caplog.records if r.name == "llm_sse.stream"]
    samples = await scrape(client, service.url)
    outcomes: dict[str, int] = {}
    for line in lines:
        outcomes[line["outcome"]] = outcomes.get(line["outcome"], 0) + 1
    assert outcomes == {"done": 2, "upstream_error": 1, "cancelled": 1, "model_not_found": 1}
    for outcome, count in outcomes.items():
        assert value(samples, "llm_sse_streams_total", provider="ollama", outcome=outcome) == count
    assert value(samples, "llm_sse_tokens_total", provider="ollama", kind="answer") == sum(li["tokens"] for li in lines)
    assert value(samples, "llm_sse_skipped_upstream_lines_total", provider="ollama") == 1
    assert value(samples, "llm_sse_cancels_total") == 1
    assert value(samples, "llm_sse_upstream_attempts_total", provider="ollama", result="ok") == 4
    assert value(samples, "llm_sse_upstream_attempts_total", provider="ollama", result="model_not_found") == 1
    assert value(samples, "llm_sse_requests_rejected_total", code="invalid_request") == 1
    with_token = [li for li in lines if li["ttft_ms"] is not None]
    assert value(samples, "llm_sse_time_to_first_token_seconds_count", provider="ollama") == len(with_token)
    assert value(samples, "llm_sse_stream_duration_seconds_count", provider="ollama") == 5
    assert value(samples, "llm_sse_streams_active") == 0


async def test_open_streams_and_heartbeats_are_counted(make_service, client, fake_ollama):
    service = await make_service(heartbeat=0.02)
    fake_ollama.push(Script([Hang()]))
    response = await client.post(service.url + "/api/chat", json=CHAT)
    for _ in range(3):
        assert await response.content.readuntil(b"\n\n") == b": ping\n\n"
    samples = await scrape(client, service.url)
    assert value(samples, "llm_sse_streams_active") == 1
    response.close()
    await asyncio.wait_for(fake_ollama.requests[0].disconnected.wait(), 5)
    await eventually(lambda: not service.app[REGISTRY].streams)
    samples = await scrape(client, service.url)
    assert value(samples, "llm_sse_streams_active") == 0
    assert value(samples, "llm_sse_heartbeats_total") >= 3


async def test_metrics_say_what_to_install_when_the_extra_is_missing(fake_ollama, client):
    app = create_app(Settings(provider="ollama", ollama_url=fake_ollama.url, port=0))
    app[METRICS] = NoMetrics()
    runner = make_runner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        async with client.get(url + "/metrics") as response:
            assert response.status == 501
            assert "llm-sse[metrics]" in (await response.json())["error"]["message"]
        async with client.post(url + "/api/chat", json=CHAT) as response:
            assert (await read_frames(response))[-1].event == "done"
    finally:
        await runner.cleanup()


async def test_followers_of_resumable_streams_are_counted_by_kind_and_outcome(service, client, caplog):
    caplog.set_level(logging.INFO)
    async with client.post(service.url + "/api/chat", json={**CHAT, "resumable": True}) as response:
        meta = (await read_frames(response))[0].data
    headers = {"X-Resume-Token": meta["resume"]["token"], "Last-Event-ID": "1"}
    async with client.get(service.url + meta["resume"]["url"], headers=headers) as response:
        await response.read()
    await eventually(lambda: len([r for r in caplog.records if r.name == "llm_sse.follower"]) == 2)
    samples = await scrape(client, service.url)
    assert value(samples, "llm_sse_followers_total", kind="post", outcome="done") == 1
    assert value(samples, "llm_sse_followers_total", kind="resume", outcome="done") == 1
    assert value(samples, "llm_sse_streams_total", provider="ollama", outcome="done") == 1
