"""Generated requests: no 5xx, no hang, no traceback -- and the OpenAPI document tells the truth.

Two fuzzers against one live service (keys, CORS and the injection detector
on; the fake Ollama upstream, so valid requests really stream):

* schemathesis, driven by GET /openapi.json: schema-valid and schema-invalid
  bodies, headers (Authorization, Origin) and methods, checking every answer
  against the document (status codes, content types, the event stream's
  events, error bodies) and that invalid requests are refused;
* hypothesis, for what a schema does not describe: arbitrary bytes, content
  types, encodings and headers, sent as they are.

Both are bounded (examples and seconds per request) so CI stays fast on two cores.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sse import openapi
from sse.settings import Settings
from tests.conftest import NO_LIMITS
from tests.fakes.ollama import FakeOllama
from tests.helpers import start_service

ROOT = Path(__file__).resolve().parent.parent
KEY = "k-fuzz-0123456789abcdefghij"
ORIGIN = "https://chat.example.com"
REQUEST_SECONDS = 10.0


@pytest.fixture(scope="module")
def live_url() -> Iterator[str]:
    """The service and a fake Ollama on their own event loop in a thread, for blocking clients."""
    started = threading.Event()
    state: dict[str, object] = {}

    def run() -> None:
        async def main() -> None:
            fake = FakeOllama()
            await fake.start()
            settings = Settings(
                provider="ollama", ollama_url=fake.url, port=0, api_keys=KEY, cors_origins=ORIGIN, **NO_LIMITS
            )
            service = await start_service(settings)
            stop = asyncio.Event()
            state.update(url=service.url, loop=asyncio.get_running_loop(), stop=stop)
            started.set()
            await stop.wait()
            await service.stop()
            await fake.close()

        asyncio.run(main())

    thread = threading.Thread(target=run, name="fuzzed-service")
    thread.start()
    assert started.wait(30), "the service did not start"
    yield str(state["url"])
    loop = state["loop"]
    assert isinstance(loop, asyncio.AbstractEventLoop)
    loop.call_soon_threadsafe(state["stop"].set)  # type: ignore[union-attr]
    thread.join(30)


def test_the_document_states_the_limits_in_force():
    settings = Settings(max_prompt_chars=500, max_messages=7, max_predict=99, models_allowed="a,b")
    document = openapi.build(settings, keys_required=True)
    schemas = document["components"]["schemas"]
    assert schemas["ChatRequest"]["properties"]["prompt"]["maxLength"] == 500
    assert schemas["ChatRequest"]["properties"]["messages"]["maxItems"] == 7
    assert schemas["Message"]["properties"]["content"]["maxLength"] == 500
    assert schemas["Options"]["properties"]["num_predict"]["maximum"] == 99
    assert schemas["Options"]["properties"]["max_tokens"]["maximum"] == 99
    assert schemas["ChatRequest"]["properties"]["model"]["enum"] == ["a", "b", None]
    chat = document["paths"]["/api/chat"]["post"]
    assert chat["security"] == [{"bearer": []}]
    assert {"200", "400", "401", "413", "429", "503"} <= set(chat["responses"])
    assert "Retry-After" in chat["responses"]["429"]["headers"]
    assert "401" not in openapi.build(Settings(), keys_required=False)["paths"]["/api/chat"]["post"]["responses"]


@pytest.mark.slow
@pytest.mark.timeout(660)  # the run itself is bounded at 600 s below; on a busy machine it takes minutes
def test_schemathesis_finds_no_5xx_hang_traceback_or_lie_in_the_document(live_url, tmp_path):
    command = [
        sys.executable, "-m", "schemathesis.cli",
        "--config-file", str(ROOT / "tests" / "fuzz" / "schemathesis.toml"),
        "run", live_url + "/openapi.json",
        "--header", f"Authorization: Bearer {KEY}",
        "--phases", "examples,coverage,fuzzing",
        "--checks", "all",
        # Valid requests may still be refused (an unknown model is a 404), and
        # this API has no resources to create, reuse or authorise per object.
        "--exclude-checks", "positive_data_acceptance,use_after_free,ensure_resource_availability,"
        "object_level_authorization",
        "--max-examples", "120",
        "--seed", "20261126",
        "--workers", "1",
        "--request-timeout", str(REQUEST_SECONDS),
        "--max-response-time", "5",
        "--suppress-health-check", "all",
        "--no-color",
    ]  # fmt: skip
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.fuzz.hooks", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL
    )
    summary = result.stdout[result.stdout.rfind("SUMMARY") :] if "SUMMARY" in result.stdout else result.stdout
    print(summary[-3000:])
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-5000:]
    assert "generated" in summary


# -- what no schema describes: raw bytes, content types, encodings, headers

CONTENT_TYPES = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "application/json; charset=latin-1",
        "APPLICATION/JSON",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=xyz",
        "application/json; boundary",
        "",
        "*/*",
        "application/x-ndjson",
    ]
) | st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=40)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
VALID = {"messages": [{"role": "user", "content": "hi"}]}
BODIES = st.one_of(
    st.binary(max_size=2048),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(st.sampled_from(["prompt", "messages", "model", "options", "think"]), JSON_VALUES).map(
        lambda v: json.dumps(v).encode()
    ),
    st.fixed_dictionaries({}, optional={"options": JSON_VALUES, "model": JSON_VALUES, "think": JSON_VALUES}).map(
        lambda extra: json.dumps({**VALID, **extra}).encode()
    ),
    st.integers(1, 50_000).map(lambda depth: b"[" * depth + b"]" * depth),
    st.just(json.dumps(VALID).encode()),
)
HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)
EXTRA_HEADERS = st.dictionaries(
    st.sampled_from(
        [
            "Content-Encoding",
            "Origin",
            "X-Forwarded-For",
            "Accept",
            "Accept-Encoding",
            "Expect",
            "Last-Event-ID",
            "Access-Control-Request-Method",
            "Authorization",
            "Range",
        ]
    ),
    st.sampled_from(["gzip", "deflate", "br", "identity", ORIGIN, "null", "100-continue", f"Bearer {KEY}"])
    | HEADER_TEXT,
    max_size=4,
)


@pytest.mark.slow
@settings(max_examples=250, deadline=None, database=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(
    method=st.sampled_from(["POST", "POST", "POST", "GET", "OPTIONS", "PUT", "PATCH", "DELETE", "HEAD"]),
    path=st.sampled_from(["/api/chat", "/api/chat", "/api/models", "/openapi.json", "/healthz", "/api/nope"]),
    content_type=CONTENT_TYPES,
    body=BODIES,
    headers=EXTRA_HEADERS,
    authorized=st.booleans(),
)
def test_raw_requests_never_get_a_5xx_a_hang_or_a_traceback(
    live_url, method, path, content_type, body, headers, authorized
):
    parts = urlsplit(live_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=REQUEST_SECONDS)
    sent = dict(headers)
    if content_type:
        sent["Content-Type"] = content_type
    if authorized:
        sent["Authorization"] = f"Bearer {KEY}"
    try:
        # As UTF-8 bytes: any text a client might put in a header goes out as it is.
        connection.request(method, path, body=body, headers={k: v.encode() for k, v in sent.items()})
        response = connection.getresponse()
        content = response.read()  # a hang raises TimeoutError here, failing the example
    finally:
        connection.close()
    sent_as = f"{method} {path} {sent} {body[:200]!r}"
    assert response.status < 500, (response.status, content[:500], sent_as)
    text = content.decode("utf-8", "replace")
    assert "Traceback" not in text, sent_as
    assert '.py", line' not in text, sent_as
    if response.status >= 400 and method != "HEAD":
        received = response.getheader("Content-Type", "")
        assert received.startswith("application/json"), (response.status, received, content[:300], sent_as)
        error = json.loads(content)["error"]
        assert {"code", "message"} <= set(error), sent_as
