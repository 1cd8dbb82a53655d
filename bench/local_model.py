"""Time to first token and tokens per second of the built-in model, through the real service.

    .venv/bin/python bench/local_model.py            # 1 warm-up + 5 runs per prompt
    .venv/bin/python bench/local_model.py --threads 1,2 --runs 10

Starts the service in-process on a loopback port with ``LLM_SSE_PROVIDER=local``
and streams greedy answers through ``POST /api/chat``, as a browser would.
Time to first token is measured by the client, from sending the request to
the first ``token`` frame (queueing, prompt processing and the first decode
step); tokens per second is the ``done`` frame's ``timing.tokens_per_s``
(decode only).  Each run's question differs at its start, so the model
re-reads the prompt rather than reusing the previous run's (only the shared
system prompt is reused, as it is between real users).  Results also go to
bench/results/local_model.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sse.eventstream import EventStreamDecoder
from sse.providers.local import LocalProvider
from sse.settings import Settings
from sse.web.app import create_app, make_runner
from sse.web.keys import PROVIDERS

PROMPTS = {
    "short": "Why is the sky blue?",
    "long": "Summarise this in one sentence: " + "The river runs past the old mill and under the stone bridge. " * 22,
}


async def one_run(session: aiohttp.ClientSession, url: str, prompt: str, num_predict: int) -> dict[str, Any]:
    body = {"prompt": prompt, "options": {"num_predict": num_predict, "temperature": 0}}
    sent = time.perf_counter()
    first_token: float | None = None
    done: dict[str, Any] | None = None
    decoder = EventStreamDecoder()
    async with session.post(url + "/api/chat", json=body) as response:
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {await response.text()}")
        async for chunk in response.content.iter_any():
            for event in decoder.feed(chunk):
                if event.type == "token" and first_token is None:
                    first_token = time.perf_counter()
                elif event.type == "done":
                    done = json.loads(event.data)
                elif event.type == "error":
                    raise RuntimeError(event.data)
    if first_token is None or done is None:
        raise RuntimeError("the stream ended without tokens or without done")
    return {
        "ttft_ms": (first_token - sent) * 1000,
        "tokens_per_s": done["timing"]["tokens_per_s"],
        "prompt_tokens": done["usage"]["prompt_tokens"],
        "completion_tokens": done["usage"]["completion_tokens"],
    }


async def bench(threads: int, runs: int, num_predict: int) -> list[dict[str, Any]]:
    settings = Settings(provider="local", port=0, local_threads=threads, log_level="warning")
    app = create_app(settings)
    runner = make_runner(app)
    await runner.setup()
    provider = app[PROVIDERS][0]
    assert isinstance(provider, LocalProvider)
    thread_label = f"{provider.threads}" + (" (default)" if not threads else "")
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    rows = []
    try:
        async with aiohttp.ClientSession() as session:
            for label, prompt in PROMPTS.items():
                await one_run(session, url, f"(warm-up) {prompt}", num_predict)
                samples = [await one_run(session, url, f"({i + 1}) {prompt}", num_predict) for i in range(runs)]
                rows.append(
                    {
                        "threads": thread_label,
                        "prompt": label,
                        "prompt_tokens": samples[0]["prompt_tokens"],
                        "completion_tokens": statistics.median(s["completion_tokens"] for s in samples),
                        "ttft_ms_median": round(statistics.median(s["ttft_ms"] for s in samples)),
                        "ttft_ms_max": round(max(s["ttft_ms"] for s in samples)),
                        "tokens_per_s_median": round(statistics.median(s["tokens_per_s"] for s in samples), 1),
                        "tokens_per_s_min": round(min(s["tokens_per_s"] for s in samples), 1),
                    }
                )
    finally:
        await runner.cleanup()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", default="0", help="comma-separated thread counts (0: the service's default)")
    parser.add_argument("--runs", type=int, default=5, help="measured runs per prompt (after one warm-up)")
    parser.add_argument("--num-predict", type=int, default=128, help="tokens per answer")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]  # other work on the machine; the bench itself adds to it later
    rows: list[dict[str, Any]] = []
    for threads in (int(t) for t in args.threads.split(",")):
        rows.extend(asyncio.run(bench(threads, args.runs, args.num_predict)))
    machine = f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores, load average {load_before:.1f} before"
    print(f"built-in model on {machine}; {args.runs} runs per prompt, num_predict {args.num_predict}, greedy")
    print("| threads | prompt | time to first token, median (max) | tokens/s, median (min) |")
    print("|---|---|---|---|")
    for row in rows:
        ttft = f"{row['ttft_ms_median']} ms ({row['ttft_ms_max']} ms)"
        rate = f"{row['tokens_per_s_median']} ({row['tokens_per_s_min']})"
        print(f"| {row['threads']} | {row['prompt_tokens']} tokens | {ttft} | {rate} |")
    results = Path(__file__).resolve().parent / "results"
    results.mkdir(exist_ok=True)
    (results / "local_model.json").write_text(json.dumps({"machine": machine, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
