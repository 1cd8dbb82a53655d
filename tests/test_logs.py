"""One structured log line per stream, whatever its ending; prompts only when asked."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from sse.logs import ConsoleFormatter, JsonFormatter, wants_console
from tests.fakes.ollama import Line, Script, token_lines
from tests.helpers import read_frames
from tests.process import ServiceProcess

SECRET_PROMPT = "my very private question"


def stream_lines(caplog) -> list[dict]:
    return [record.fields for record in caplog.records if record.name == "llm_sse.stream"]


@pytest.fixture(autouse=True)
def _capture_info(caplog):
    caplog.set_level(logging.INFO)


async def test_a_finished_stream_logs_one_line_with_its_facts(service, client, caplog):
    async with client.post(service.url + "/api/chat", json={"prompt": SECRET_PROMPT}) as response:
        frames = await read_frames(response)
    (line,) = stream_lines(caplog)
    assert line["stream"] == frames[0].data["id"]
    assert line["client"] == "127.0.0.1"
    assert line["model"] == "llama3.2:latest"
    assert line["provider"] == "ollama"
    assert line["outcome"] == "done"
    assert line["tokens"] == 6
    assert line["ttft_ms"] is not None
    assert line["duration_ms"] >= line["ttft_ms"]
    assert line["skipped_lines"] == 0
    assert line["input_chars"] == len(SECRET_PROMPT)


async def test_prompts_are_not_logged_by_default(service, client, caplog):
    async with client.post(service.url + "/api/chat", json={"prompt": SECRET_PROMPT}) as response:
        await response.read()
    formatter = JsonFormatter()
    assert all(SECRET_PROMPT not in formatter.format(record) for record in caplog.records)


async def test_prompts_are_logged_when_asked(make_service, client, caplog):
    service = await make_service(log_prompts=True)
    async with client.post(service.url + "/api/chat", json={"prompt": SECRET_PROMPT}) as response:
        await response.read()
    (line,) = stream_lines(caplog)
    assert line["prompt"] == SECRET_PROMPT


async def test_an_error_stream_logs_its_code_and_message(service, client, fake_ollama, caplog):
    error = Line({"error": "an error was encountered while running the model"})
    fake_ollama.push(Script([*token_lines(["a"])[:-1], error]))
    async with client.post(service.url + "/api/chat", json={"prompt": "x"}) as response:
        await response.read()
    (line,) = stream_lines(caplog)
    assert line["outcome"] == "upstream_error"
    assert line["error"] == "an error was encountered while running the model"


async def test_a_stream_refused_before_it_started_logs_its_line_too(service, client, caplog):
    async with client.post(service.url + "/api/chat", json={"prompt": "x", "model": "nope"}) as response:
        assert response.status == 404
    (line,) = stream_lines(caplog)
    assert line["outcome"] == "model_not_found"
    assert line["attempts"] == ["ollama: model_not_found: model 'nope' not found"]


async def test_every_log_line_of_the_process_is_one_json_object(fake_ollama, client):
    process = ServiceProcess("--provider", "ollama", "--ollama-url", fake_ollama.url, "--port", "0")
    await process.start()
    try:
        async with client.post(process.url + "/api/chat", json={"prompt": SECRET_PROMPT}) as response:
            await response.read()
        line = await process.wait_for_line(lambda line: line.get("msg") == "stream")
    finally:
        process.signal()
        await process.wait()
    assert line["outcome"] == "done"
    assert line["level"] == "info"
    assert line["logger"] == "llm_sse.stream"
    for text in process.stderr_text:
        assert isinstance(json.loads(text), dict), text
    assert not any(SECRET_PROMPT in text for text in process.stderr_text)


# -- the console format, for a person at a terminal


def console_line(msg: str, level: int = logging.INFO, name: str = "llm_sse.stream", **fields) -> str:
    record = logging.LogRecord(name, level, __file__, 1, msg, None, None)
    record.fields = fields
    return ConsoleFormatter().format(record).split(" ", 1)[1]  # without the time


def test_a_failed_stream_is_one_short_line_on_the_console():
    line = console_line(
        "stream",
        logging.WARNING,
        stream="AbCdEfGhIjKlMnOp",
        outcome="upstream_timeout",
        model="llama3.2",
        provider="ollama",
        duration_ms=60012.0,
        tokens=3,
        error="the model server sent nothing for 60 s " + "and more " * 40,
    )
    assert line.startswith("warning: stream AbCdEfGh upstream_timeout after 60 s: the model server sent nothing")
    assert line.endswith("… (llama3.2 via ollama)")
    assert len(line) < 200


def test_any_other_record_on_the_console_is_its_message_and_its_fields_cut_short():
    line = console_line("redis unavailable", logging.WARNING, name="llm_sse.limits", why="x" * 500, backend="redis")
    assert line.startswith("warning: redis unavailable (why: xxx")
    assert line.endswith("…, backend: redis)")
    assert "\n" not in line


def test_auto_chooses_json_unless_the_lines_go_to_a_terminal(tmp_path):
    with open(tmp_path / "log", "w") as file:
        assert wants_console("auto", file) is False
        assert wants_console("console", file) is True
    assert wants_console("json", sys.stderr) is False
