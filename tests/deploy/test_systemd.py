"""The systemd unit: it is a valid, hardened unit, and the service speaks sd_notify.

No systemd runs in a container, so the unit is checked offline with Debian's
``systemd-analyze`` (``verify`` and ``security --offline``), and the
notification protocol is checked against a datagram socket this test owns,
with the real service running as a process.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from sse import cli, systemd
from sse.settings import Settings
from tests.deploy.process import start_instance
from tests.deploy.units import ENV_EXAMPLE, TEMPLATE, UNIT, environment_file, seconds, unit_settings
from tests.fakes.ollama import FakeOllama
from tests.realparts import missing

INSTALL_DIR = "/opt/llm-sse"


def systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found:
        return found
    missing("systemd-analyze", "`make system-deps` installs Debian's systemd package")


@pytest.fixture
def install_root() -> Iterator[Path]:
    """A stand-in for /opt/llm-sse whose .venv/bin/python exists.

    ``systemd-analyze verify`` insists that ExecStart's program exists, and
    ``--root`` does not apply to loose unit files; so the unit is rendered
    with this folder in place of /opt/llm-sse (the only change).
    """
    folder = Path(tempfile.mkdtemp(prefix="llm-sse-unit-"))
    (folder / ".venv" / "bin").mkdir(parents=True)
    (folder / ".venv" / "bin" / "python").symlink_to(sys.executable)
    yield folder
    shutil.rmtree(folder)


def render_unit(unit: Path, install_root: Path, name: str | None = None) -> Path:
    text = unit.read_text()
    assert INSTALL_DIR in text
    rendered = install_root / (name or unit.name)
    rendered.write_text(text.replace(INSTALL_DIR, str(install_root)))
    return rendered


def verify(path: Path) -> subprocess.CompletedProcess[str]:
    # --man=no: Documentation= is not looked up in man pages, absent in containers.
    return subprocess.run(
        [systemd_analyze(), "verify", "--man=no", str(path)], capture_output=True, text=True, timeout=60
    )


# -- the unit files


@pytest.mark.parametrize(("unit", "name"), [(UNIT, None), (TEMPLATE, "llm-sse@8081.service")])
def test_unit_passes_systemd_analyze_verify(unit: Path, name: str | None, install_root: Path) -> None:
    # A template is verified as an instance, so %i is resolved as systemd would.
    result = verify(render_unit(unit, install_root, name))
    # verify exits 0 even for an unknown key or a bad value ("..., ignoring"):
    # any output at all is a finding.
    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == ""


def test_verify_reports_a_misspelt_directive(install_root: Path) -> None:
    """The check above can fail: systemd-analyze does report what systemd would ignore."""
    broken = render_unit(UNIT, install_root)
    broken.write_text(broken.read_text().replace("NoNewPrivileges=", "NoNewPrivilege="))
    result = verify(broken)
    assert "Unknown key" in result.stderr


def test_unit_hardening_scores_ok_offline(install_root: Path) -> None:
    unit = render_unit(UNIT, install_root)
    # Exposure is reported from 0.0 (locked down) to 10.0; threshold is in tenths.
    result = subprocess.run(
        [systemd_analyze(), "security", "--offline=yes", "--threshold=20", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    assert "Overall exposure level for llm-sse.service" in result.stdout


def test_unit_is_notify_type_with_the_required_hardening() -> None:
    settings = unit_settings(UNIT)
    assert settings["Type"] == ["notify"]
    assert settings["Restart"] == ["on-failure"]
    assert settings["EnvironmentFile"] == ["/etc/llm-sse/llm-sse.env"]
    assert settings["ExecStart"][0].startswith(f"{INSTALL_DIR}/.venv/bin/python ")
    for key, value in {
        "DynamicUser": "yes",
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
    }.items():
        assert settings[key] == [value], key
    assert settings["RestrictAddressFamilies"] == ["AF_INET AF_INET6 AF_UNIX"]
    assert "@system-service" in settings["SystemCallFilter"]
    assert settings["MemoryMax"]


def test_template_differs_from_the_unit_only_in_its_port() -> None:
    def body(path: Path) -> list[str]:
        return [line for line in path.read_text().splitlines() if line and not line.startswith("#")]

    differences = sorted(set(body(UNIT)) ^ set(body(TEMPLATE)))
    assert differences == sorted(
        [
            "Description=llm-sse (LLM token streaming over Server-Sent Events)",
            "Description=llm-sse (LLM token streaming over Server-Sent Events) on port %i",
            f"ExecStart={INSTALL_DIR}/.venv/bin/python {INSTALL_DIR}/app.py",
            f"ExecStart={INSTALL_DIR}/.venv/bin/python {INSTALL_DIR}/app.py --port %i",
        ]
    )


def test_stop_timeout_outlasts_the_drain() -> None:
    """systemd must not kill the service while it is still ending streams properly."""
    grace = Settings.load([], environ=environment_file(ENV_EXAMPLE)).shutdown_grace
    # grace, then the final-frame window, then the runner's own close (same bound).
    drain = grace + 2 * cli._FINAL_FRAME_WINDOW
    assert seconds(unit_settings(UNIT)["TimeoutStopSec"][0]) > drain


def test_environment_example_is_valid_settings() -> None:
    env = environment_file(ENV_EXAMPLE)
    assert all(key.startswith("LLM_SSE_") or key == "OLLAMA_URL" for key in env)
    settings = Settings.load([], environ=env)  # raises on any bad value
    assert settings.host == "127.0.0.1"
    assert "127.0.0.1" in settings.trusted_proxies.split(",")


# -- sd_notify


def test_notify_without_notify_socket_does_nothing() -> None:
    assert systemd.notify("READY=1", environ={}) is False


def test_notify_to_an_unsupported_address_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="llm_sse.systemd"):
        assert systemd.notify("READY=1", environ={"NOTIFY_SOCKET": "vsock:2:1234"}) is False
    assert "cannot notify systemd" in caplog.text


def test_notify_to_a_missing_socket_is_logged_not_raised(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    with caplog.at_level(logging.WARNING, logger="llm_sse.systemd"):
        assert systemd.notify("READY=1", environ={"NOTIFY_SOCKET": str(tmp_path / "gone")}) is False
    assert "cannot notify systemd" in caplog.text


def test_abstract_socket_names_get_a_leading_nul() -> None:
    assert systemd.socket_address("@/org/freedesktop/systemd1/notify/42") == "\0/org/freedesktop/systemd1/notify/42"
    assert systemd.socket_address("/run/systemd/notify") == "/run/systemd/notify"
    assert systemd.socket_address("@") is None


@pytest.fixture(params=["path", "abstract"])
def notify_socket(request: pytest.FixtureRequest) -> Iterator[tuple[socket.socket, str]]:
    """A datagram socket playing systemd's part, and the NOTIFY_SOCKET value naming it."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.setblocking(False)
    folder = Path(tempfile.mkdtemp(prefix="llm-sse-notify-"))
    if request.param == "path":
        name = str(folder / "notify")
        sock.bind(name)
    else:
        name = f"@llm-sse-test/{os.getpid()}/{folder.name}"
        sock.bind("\0" + name[1:])
    yield sock, name
    sock.close()
    shutil.rmtree(folder)


async def receive(sock: socket.socket, within: float = 30.0) -> dict[str, str]:
    async with asyncio.timeout(within):
        data = await asyncio.get_running_loop().sock_recv(sock, 4096)
    return dict(line.split("=", 1) for line in data.decode().splitlines())


async def test_ready_datagram_arrives_once_the_port_listens(
    notify_socket: tuple[socket.socket, str], fake_ollama: FakeOllama
) -> None:
    sock, name = notify_socket
    app = await start_instance(fake_ollama.url, env={"NOTIFY_SOCKET": name}, wait=False)
    try:
        ready = await receive(sock)
        assert ready["READY"] == "1"
        url = ready["STATUS"].removeprefix("listening on ").rstrip("/")
        # READY=1 is a promise that the port accepts connections now.
        async with aiohttp.ClientSession() as client, client.get(url + "/healthz") as response:
            assert response.status == 200

        app.terminate()
        stopping = await receive(sock)
        assert stopping["STOPPING"] == "1"
        assert await app.wait_exit() == 0
    finally:
        await app.stop()


async def test_no_ready_datagram_when_the_port_is_taken(
    notify_socket: tuple[socket.socket, str], fake_ollama: FakeOllama
) -> None:
    sock, name = notify_socket
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        app = await start_instance(fake_ollama.url, "--port", port, env={"NOTIFY_SOCKET": name}, wait=False)
        try:
            assert await app.wait_exit() == 1
        finally:
            await app.stop()
    # The process has exited: anything it sent is already queued.
    with pytest.raises(BlockingIOError):
        sock.recv(4096)
