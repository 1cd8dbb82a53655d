"""Start-up: it says what it does in plain lines, and a configuration that cannot work fails at once, saying why."""

from __future__ import annotations

import json
import re
import socket

import pytest

from sse.providers.llamacpp import MODEL_NAME
from tests.fakes.ollama import FakeOllama
from tests.fakes.tcp import closed_port
from tests.helpers import read_frames
from tests.process import ServiceProcess
from tests.terminal import TerminalProcess

NEEDS_MODEL = pytest.mark.usefixtures("local_extra")


async def test_an_unknown_provider_exits_2_naming_the_known_ones():
    process = ServiceProcess("--provider", "ollamma", "--port", "0")
    await process.start(wait_listening=False)
    assert await process.wait() == 2
    assert any("--provider: unknown provider 'ollamma'; known: auto, local" in text for text in process.stderr_text)


async def test_a_port_in_use_exits_1_with_a_message():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = ServiceProcess("--provider", "ollama", "--port", str(port))
        await process.start(wait_listening=False)
        assert await process.wait() == 1
    assert any(f"cannot listen on 127.0.0.1:{port}" in text for text in process.stderr_text)


@NEEDS_MODEL
async def test_a_port_in_use_is_reported_before_the_model_loads_with_how_to_choose_another():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = ServiceProcess("--provider", "local", "--port", str(port))
        await process.start(wait_listening=False)
        assert await process.wait() == 1
    (line,) = [line for line in process.lines if line.get("msg") == "cannot start"]
    assert line["why"] == (
        f"cannot listen on 127.0.0.1:{port}: the port is in use (llm-sse already running, or another server); "
        'choose another with --port, e.g. make serve ARGS="--port 9000"'
    )
    assert not any(line.get("msg") in ("loading model", "built-in model loaded") for line in process.lines)


async def test_a_port_set_by_the_environment_is_named_as_the_variable():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = ServiceProcess("--provider", "ollama", env={"LLM_SSE_PORT": str(port)})
        await process.start(wait_listening=False)
        assert await process.wait() == 1
    assert any("set LLM_SSE_PORT to a free one" in text for text in process.stderr_text)


async def test_a_host_that_is_not_this_machine_says_what_to_choose():
    process = ServiceProcess("--provider", "ollama", "--host", "192.0.2.1", "--port", "0")
    await process.start(wait_listening=False)
    assert await process.wait() == 1
    assert any("192.0.2.1 is not an address of this machine; set --host to 127.0.0.1" in t for t in process.stderr_text)


async def test_an_explicit_ollama_provider_starts_even_if_ollama_is_down(client):
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        dead = free.getsockname()[1]
    process = ServiceProcess("--provider", "ollama", "--ollama-url", f"http://127.0.0.1:{dead}", "--port", "0")
    await process.start()
    try:
        async with client.get(process.url + "/readyz") as response:
            assert response.status == 503
            body = await response.json()
        assert body["providers"][0]["ready"] is False
    finally:
        process.signal()
        assert await process.wait() == 0


# -- the console, on a terminal


def not_json(line: str) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return True
    return False


async def test_on_a_terminal_it_prints_plain_lines_naming_the_flag_and_one_line_per_stream(
    fake_ollama: FakeOllama, client
):
    terminal = await TerminalProcess("--provider", "ollama", "--ollama-url", fake_ollama.url, "--port", "0").start()
    try:
        servers = await terminal.wait_for(r"model servers, in order: (.*)$")
        assert servers[1] == f"Ollama at {fake_ollama.url}; set by --provider"
        url = (await terminal.wait_for(r"ready: open (http://127\.0\.0\.1:\d+/) in your browser"))[1]
        async with client.post(url + "api/chat", json={"prompt": "hi"}) as response:
            frames = await read_frames(response)
        stream_id = frames[0].data["id"]
        line = (await terminal.wait_for(rf"stream {re.escape(stream_id[:8])} done: .*$"))[0]
        assert re.fullmatch(
            r"stream \S{8} done: 6 tokens in \d+\.\d\d s, first after \d+\.\d\d s, llama3\.2:latest via ollama", line
        ), line
    finally:
        assert await terminal.stop() == 0
    assert terminal.lines
    assert all(not_json(line) for line in terminal.lines if line)
    assert len(terminal.lines[-1]) < 100


@NEEDS_MODEL
async def test_on_a_terminal_no_ollama_is_one_short_sentence_without_connection_noise():
    dead = closed_port()
    terminal = await TerminalProcess("--ollama-url", f"http://127.0.0.1:{dead}", "--port", "0").start()
    try:
        why = (await terminal.wait_for(r"no Ollama at .*$"))[0]
        assert why == (
            f"no Ollama at http://127.0.0.1:{dead}, so the built-in demo model answers: {MODEL_NAME} "
            "(tiny, often wrong; docs/providers.md says how to use a real one)"
        )
        await terminal.wait_for(rf"{MODEL_NAME} loaded in \d+\.\d\d s \(context 8192 tokens, \d+ threads?\)$")
        await terminal.wait_for(r"ready: open http://127\.0\.0\.1:\d+/ in your browser \(Ctrl-C stops\)$")
    finally:
        assert await terminal.stop() == 0
    screen = "\n".join(terminal.lines)
    for noise in ("Connect call failed", "ssl:default", "Errno", '{"'):
        assert noise not in screen


async def test_json_lines_on_a_terminal_when_asked(fake_ollama: FakeOllama):
    args = ("--provider", "ollama", "--ollama-url", fake_ollama.url, "--port", "0", "--log-format", "json")
    terminal = await TerminalProcess(*args).start()
    try:
        line = json.loads((await terminal.wait_for(r'^\{.*"msg": "listening".*\}$'))[0])
    finally:
        await terminal.stop()
    assert line["url"].startswith("http://127.0.0.1:")


async def test_console_lines_when_piped_if_asked(fake_ollama: FakeOllama):
    args = ("--provider", "ollama", "--ollama-url", fake_ollama.url, "--port", "0", "--log-format", "console")
    process = ServiceProcess(*args)
    await process.start(wait_listening=False)
    try:
        await process.wait_for_line(lambda line: "ready: open http://127.0.0.1:" in line["msg"])
    finally:
        process.signal()
        await process.wait()
    assert all(not_json(text) for text in process.stderr_text)


async def test_a_start_up_error_on_a_terminal_is_one_plain_sentence():
    dead = closed_port()
    terminal = await TerminalProcess(
        "--provider", "openrouter", "--ollama-url", f"http://127.0.0.1:{dead}", "--port", "0",
        env={"OPENROUTER_API_KEY": "", "OPENROUTER_API_KEY_FILE": ""},
    ).start()  # fmt: skip
    code = await terminal.wait()
    assert code == 1
    errors = [line for line in terminal.lines if "error: " in line]
    assert len(errors) == 1
    assert errors[0].endswith(
        "error: cannot start: --provider lists openrouter but no key is set: "
        "set OPENROUTER_API_KEY, or OPENROUTER_API_KEY_FILE to a file holding it"
    )
