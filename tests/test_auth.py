"""API keys: one 401 for missing and wrong keys, constant-time checks, keys never logged."""

from __future__ import annotations

import hashlib
import hmac
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from sse import auth
from sse.auth import ApiKeys, BadKey, check_key, key_id, parse_key_file
from sse.logs import JsonFormatter
from sse.protect import API_KEYS
from sse.settings import Settings, SettingsError
from sse.web.app import create_app
from tests.test_limits import CHAT, hold_stream

ROOT = Path(__file__).resolve().parent.parent
KEY_A = "k-alpha-0123456789abcdefghij"
KEY_B = "k-bravo-0123456789abcdefghij"
# A key's id, as the docs define it: the first 8 hex digits of the key's SHA-256.
ID_A = hashlib.sha256(KEY_A.encode()).hexdigest()[:8]
ID_B = hashlib.sha256(KEY_B.encode()).hexdigest()[:8]
KEY_FILE_TEXT = f"""# keys for the demo page
{KEY_A}
   {KEY_B}   # the mobile app

"""


# -- the core


def test_a_key_file_has_one_key_per_line_with_comments_and_blank_lines():
    assert parse_key_file(KEY_FILE_TEXT) == [KEY_A, KEY_B]


@pytest.mark.parametrize("bad", ["short", "has space inside-0123456789", "ünïcode-0123456789abc", "x" * 600])
def test_an_unusable_key_is_refused_without_showing_it(bad):
    with pytest.raises(BadKey) as refused:
        check_key(bad, "the key file")
    assert bad not in str(refused.value)
    assert "the key file" in str(refused.value)


def test_a_valid_bearer_header_gives_the_keys_id():
    keys = ApiKeys([KEY_A, KEY_B])
    assert keys.check(f"Bearer {KEY_B}") == ID_B == key_id(KEY_B)
    assert keys.check(f"bearer  {KEY_A} ") == ID_A  # the scheme is case-insensitive


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer ", f"Basic {KEY_A}", f"Bearer {KEY_A}x", f"Bearer {KEY_A} extra", "Bearer ключ"],
)
def test_anything_but_a_valid_bearer_key_is_refused(header):
    assert ApiKeys([KEY_A]).check(header) is None


def test_every_key_is_compared_even_after_a_match(monkeypatch):
    compared = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        compared.append(b)
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", counting)
    keys = ApiKeys([KEY_A, KEY_B, "k-charlie-0123456789abcdef"])
    assert keys.check(f"Bearer {KEY_A}") == ID_A
    assert len(compared) == 3
    compared.clear()
    assert keys.check("Bearer k-wrong-0123456789abcdefghij") is None
    assert len(compared) == 3


def test_the_settings_repr_never_shows_keys_or_the_redis_url():
    settings = Settings(api_keys=KEY_A, redis_url="redis://:hunter2@redis:6379/0")
    assert KEY_A not in repr(settings)
    assert "hunter2" not in repr(settings)
    assert repr(ApiKeys([KEY_A, KEY_B])) == "ApiKeys(2 keys)"


# -- loading the keys


def test_keys_come_from_the_setting_and_the_file_together(tmp_path):
    (tmp_path / "keys").write_text(KEY_FILE_TEXT)
    app = create_app(Settings(api_keys="k-env-0123456789abcdefghij", api_keys_file=str(tmp_path / "keys")))
    assert len(app[API_KEYS]) == 3


@pytest.mark.parametrize("content", [None, "# only a comment\n\n"])
def test_a_missing_or_empty_key_file_stops_the_start(tmp_path, content):
    path = tmp_path / "keys"
    if content is not None:
        path.write_text(content)
    with pytest.raises(SettingsError, match="LLM_SSE_API_KEYS_FILE"):
        create_app(Settings(api_keys_file=str(path)))


def test_the_process_exits_2_when_the_key_file_cannot_be_read(tmp_path):
    result = subprocess.run(
        [sys.executable, "app.py", "--api-keys-file", str(tmp_path / "absent"), "--port", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    assert f"--api-keys-file: cannot read {tmp_path / 'absent'}" in result.stderr  # the flag that was given


def test_a_short_key_in_the_environment_fails_at_start_naming_the_variable():
    with pytest.raises(SettingsError, match="LLM_SSE_API_KEYS"):
        Settings.load([], {"LLM_SSE_API_KEYS": "tooshort"})


# -- through the service


@pytest.fixture
async def keyed(make_service, tmp_path):
    (tmp_path / "index.html").write_text("<!doctype html><title>chat</title>")
    return await make_service(api_keys=f"{KEY_A},{KEY_B}", static_dir=str(tmp_path))


@pytest.mark.parametrize(("method", "path"), [("POST", "/api/chat"), ("GET", "/api/models"), ("GET", "/api/anything")])
async def test_a_missing_and_a_wrong_key_get_the_same_401(keyed, client, method, path):
    answers = []
    for headers in ({}, {"Authorization": "Bearer k-wrong-0123456789abcdefghij"}, {"Authorization": "Basic eDp5"}):
        async with client.request(method, keyed.url + path, json=CHAT, headers=headers) as response:
            answers.append((response.status, response.headers.get("WWW-Authenticate"), await response.json()))
    assert answers[0][0] == 401
    assert answers[0][1] == 'Bearer realm="llm-sse"'
    assert answers[0][2]["error"]["code"] == "unauthorized"
    assert answers[0] == answers[1] == answers[2]


async def test_a_valid_key_streams_and_the_log_names_its_id_never_the_key(keyed, client, caplog):
    caplog.set_level(logging.INFO)
    async with client.post(keyed.url + "/api/chat", json=CHAT, headers={"Authorization": f"Bearer {KEY_A}"}) as r:
        assert r.status == 200
        await r.read()
    async with client.post(keyed.url + "/api/chat", json=CHAT, headers={"Authorization": f"Bearer {KEY_B}x"}) as r:
        assert r.status == 401
    (line,) = [r.fields for r in caplog.records if r.name == "llm_sse.stream"]
    assert line["key_id"] == ID_A
    assert line["client"] == "127.0.0.1"
    formatter = JsonFormatter()
    text = "\n".join(formatter.format(record) for record in caplog.records)
    assert KEY_A not in text
    assert KEY_B not in text  # not even a wrong guess that resembles one


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/", "/index.html", "/openapi.json"])
async def test_health_checks_the_page_and_the_api_description_need_no_key(keyed, client, path):
    async with client.get(keyed.url + path) as response:
        assert response.status == 200


async def test_a_preflight_needs_no_key(make_service, client):
    service = await make_service(api_keys=KEY_A, cors_origins="https://chat.example.com")
    async with client.options(
        service.url + "/api/chat",
        headers={"Origin": "https://chat.example.com", "Access-Control-Request-Method": "POST"},
    ) as response:
        assert response.status == 204


async def test_limits_count_per_key_not_per_address(make_service, client, fake_ollama):
    service = await make_service(api_keys=f"{KEY_A},{KEY_B}", max_streams_per_client=1)
    held, gate = await hold_stream(client, service.url, fake_ollama, {"Authorization": f"Bearer {KEY_A}"})
    # Same address, another key: its own allowance.
    async with client.post(service.url + "/api/chat", json=CHAT, headers={"Authorization": f"Bearer {KEY_B}"}) as r:
        assert r.status == 200
        await r.read()
    async with client.post(service.url + "/api/chat", json=CHAT, headers={"Authorization": f"Bearer {KEY_A}"}) as r:
        assert r.status == 429
    gate.set()
    await held.read()


async def test_without_keys_a_bearer_header_is_ignored_and_limits_count_per_address(make_service, client, fake_ollama):
    # Otherwise a client could dodge its address's limits by inventing keys.
    service = await make_service(max_streams_per_client=1)
    held, gate = await hold_stream(client, service.url, fake_ollama, {"Authorization": f"Bearer {KEY_A}"})
    async with client.post(service.url + "/api/chat", json=CHAT, headers={"Authorization": f"Bearer {KEY_B}"}) as r:
        assert r.status == 429
    gate.set()
    await held.read()
