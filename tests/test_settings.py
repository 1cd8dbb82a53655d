"""Settings: flags beat the environment, which beats defaults; bad values fail at start-up."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from sse.settings import Settings, SettingsError

ROOT = Path(__file__).resolve().parent.parent


def test_flag_beats_environment_beats_default():
    env = {"LLM_SSE_PORT": "9001", "OLLAMA_URL": "http://gpu:11434"}
    assert Settings.load([], env).port == 9001
    assert Settings.load(["--port", "9002"], env).port == 9002
    assert Settings.load([], env).ollama_url == "http://gpu:11434"
    assert Settings.load([], {}).port == 8080


def test_booleans_and_numbers_are_parsed():
    settings = Settings.load(["--log-prompts", "yes", "--heartbeat", "2.5"], {})
    assert settings.log_prompts is True
    assert settings.heartbeat == 2.5


@pytest.mark.parametrize(
    "argv",
    [["--port", "http"], ["--heartbeat", "0"], ["--log-prompts", "maybe"], ["--trusted-proxies", "nonsense"]],
)
def test_bad_values_fail_naming_the_setting(argv):
    with pytest.raises(SettingsError, match=argv[0]):
        Settings.load(argv, {})


def test_bad_environment_value_names_the_variable():
    with pytest.raises(SettingsError, match="LLM_SSE_IDLE_TIMEOUT"):
        Settings.load([], {"LLM_SSE_IDLE_TIMEOUT": "soon"})


def test_help_documents_every_setting_and_its_variable():
    result = subprocess.run([sys.executable, "app.py", "--help"], cwd=ROOT, capture_output=True, text=True, check=True)
    help_text = " ".join(result.stdout.split())
    for field in dataclasses.fields(Settings):
        assert field.metadata["env"] in help_text
        if not field.metadata["secret"]:  # secrets have no flag: environment or file only
            assert "--" + field.name.replace("_", "-") in help_text


def test_every_setting_is_in_the_configuration_page():
    page = (ROOT / "docs" / "configuration.md").read_text()
    for field in dataclasses.fields(Settings):
        assert f"`{field.metadata['env']}`" in page, field.name


def test_a_bad_setting_exits_2_with_a_message():
    result = subprocess.run(
        [sys.executable, "app.py", "--port", "x"], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert "--port must be an integer" in result.stderr
