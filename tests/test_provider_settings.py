"""Provider settings: keys, presets, headers, model maps, the cool-down; mistakes stop the start."""

from __future__ import annotations

from pathlib import Path

import pytest

from sse.providers import FACTORIES, StartupError, select_providers
from sse.providers.http import HttpProvider, UpstreamLimits
from sse.settings import Settings, SettingsError, build_parser

KEY = "sk-or-v1-feedfacefeedfacefeedfacefeedfacefeedfacefeedfacefeedfacefeedface"


def test_keys_come_from_the_environment_and_never_from_flags() -> None:
    settings = Settings.load([], {"OPENROUTER_API_KEY": KEY, "OPENAI_API_KEY": "sk-local"})
    assert settings.openrouter_api_key == KEY
    assert settings.openai_api_key == "sk-local"
    with pytest.raises(SystemExit):
        Settings.load(["--openrouter-api-key", KEY], {})


def test_every_http_provider_keeps_the_connect_timeout_and_line_limit_the_settings_give() -> None:
    settings = Settings(
        connect_timeout=0.5,
        max_line_bytes=4096,
        openai_base_url="http://127.0.0.1:9/v1",
        openrouter_api_key=KEY,
        openrouter_model="openai/gpt-4o-mini",
    )
    for kind in ("ollama", "openai", "openrouter"):
        provider = FACTORIES[kind](settings)
        assert isinstance(provider, HttpProvider)
        assert provider.limits == UpstreamLimits(connect_timeout=0.5, max_line_bytes=4096), kind


def test_keys_are_not_in_the_settings_repr() -> None:
    settings = Settings(openrouter_api_key=KEY, openai_api_key="sk-local-secret")
    assert KEY not in repr(settings)
    assert "sk-local-secret" not in repr(settings)


def test_help_lists_the_provider_settings_and_names_the_secret_variables() -> None:
    text = build_parser().format_help()
    for flag in (
        "--provider-cooldown",
        "--openai-base-url",
        "--openai-api-key-file",
        "--openrouter-model",
        "--openrouter-models",
        "--openrouter-headers",
        "--ollama-models",
    ):
        assert flag in text
    assert "--openrouter-api-key " not in text
    assert "OPENAI_API_KEY, OPENROUTER_API_KEY come from the environment" in " ".join(text.split())


def test_cooldown_is_a_number_of_seconds_not_below_zero() -> None:
    assert Settings.load([], {"LLM_SSE_PROVIDER_COOLDOWN": "5"}).provider_cooldown == 5.0
    assert Settings().provider_cooldown == 30.0
    with pytest.raises(SettingsError, match="LLM_SSE_PROVIDER_COOLDOWN"):
        Settings(provider_cooldown=-1)


@pytest.mark.parametrize(
    ("value", "fault"),
    [
        ("not json", "JSON object"),
        ('["X-Title"]', "JSON object"),
        ('{"X Title": "a"}', "not a valid header name"),
        ('{"X-Title": 3}', "one-line string"),
        ('{"X-Title": "a\\r\\nX-Evil: 1"}', "one-line string"),
        ('{"Authorization": "Bearer x"}', "set by the service itself"),
    ],
)
def test_malformed_headers_stop_the_start(value: str, fault: str) -> None:
    with pytest.raises(SettingsError, match=fault):
        Settings(openrouter_headers=value)


def test_malformed_model_map_names_its_setting() -> None:
    with pytest.raises(SettingsError, match="LLM_SSE_OPENAI_MODELS"):
        Settings(openai_models="gpt-4o-mini")


async def test_openrouter_needs_a_key() -> None:
    with pytest.raises(StartupError, match="OPENROUTER_API_KEY"):
        await select_providers(Settings(provider="openrouter", openrouter_model="openai/gpt-4o-mini"))


async def test_openrouter_needs_a_default_model() -> None:
    with pytest.raises(StartupError, match="LLM_SSE_OPENROUTER_MODEL"):
        await select_providers(Settings(provider="openrouter", openrouter_api_key=KEY))


async def test_a_key_and_a_key_file_together_are_ambiguous(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(KEY)
    settings = Settings(provider="openai", openai_api_key="sk-x", openai_api_key_file=str(key_file))
    with pytest.raises(StartupError, match="OPENAI_API_KEY or OPENAI_API_KEY_FILE, not both"):
        await select_providers(settings)


async def test_an_unreadable_key_file_names_the_setting_not_the_key(tmp_path: Path) -> None:
    settings = Settings(provider="openai", openai_api_key_file=str(tmp_path / "missing"))
    with pytest.raises(StartupError, match=r"OPENAI_API_KEY_FILE: cannot read .*missing"):
        await select_providers(settings)
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(StartupError, match="is empty"):
        await select_providers(Settings(provider="openai", openai_api_key_file=str(tmp_path / "empty")))


def test_a_provider_listed_twice_is_refused() -> None:
    with pytest.raises(SettingsError, match=r"^--provider: 'ollama' is listed twice$"):
        Settings.load(["--provider", "ollama,ollama"], {})


async def test_ordered_list_builds_providers_in_order() -> None:
    settings = Settings(provider="ollama, openrouter, openai", openrouter_api_key=KEY, openrouter_model="x/y")
    providers, why = await select_providers(settings)
    try:
        assert [p.name for p in providers] == ["ollama", "openrouter", "openai"]
        assert why == (
            "model servers, in order: Ollama at http://127.0.0.1:11434, then OpenRouter at "
            "https://openrouter.ai/api/v1, then the OpenAI-compatible server at https://api.openai.com/v1"
            "; set by --provider / LLM_SSE_PROVIDER"
        )
        assert KEY not in repr(providers)
    finally:
        for provider in providers:
            await provider.close()
