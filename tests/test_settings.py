"""Settings: flags beat the environment, which beats defaults; bad values fail at start-up.

``--help`` and docs/configuration.md are generated from the settings' table,
so checking them against that table would prove nothing: they are checked
against what a person needs from them (groups, examples) and against the
behaviour they describe (the variable a line names really sets the value).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from sse.cors import CorsPolicy
from sse.routing import ModelMap
from sse.settings import Settings, SettingsError, build_parser, markdown

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
    [
        ["--port", "http"],
        ["--heartbeat", "0"],
        ["--log-prompts", "maybe"],
        ["--trusted-proxies", "nonsense"],
        ["--cors-origins", "chat.example.com"],
        ["--ollama-models", "nonsense"],
        ["--openai-headers", "[1]"],
        ["--provider", "ollamma"],
        ["--provider", "ollama,ollama"],
        ["--log-format", "xml"],
        ["--injection", "maybe"],
    ],
)
def test_a_bad_flag_fails_naming_the_flag_not_the_variable(argv):
    with pytest.raises(SettingsError, match=re.escape(argv[0])) as caught:
        Settings.load(argv, {})
    assert "LLM_SSE_" not in str(caught.value)


def test_a_bad_variable_fails_naming_the_variable_not_the_flag():
    with pytest.raises(SettingsError, match="LLM_SSE_IDLE_TIMEOUT") as caught:
        Settings.load([], {"LLM_SSE_IDLE_TIMEOUT": "soon"})
    assert "--idle-timeout" not in str(caught.value)
    with pytest.raises(SettingsError, match=r"^LLM_SSE_TRUSTED_PROXIES: ") as caught:
        Settings.load([], {"LLM_SSE_TRUSTED_PROXIES": "nonsense"})


def test_a_bad_api_key_names_the_variable_and_no_flag_that_does_not_exist():
    with pytest.raises(SettingsError) as caught:
        Settings.load([], {"LLM_SSE_API_KEYS": "short"})
    assert "LLM_SSE_API_KEYS" in str(caught.value)
    assert "--api-keys" not in str(caught.value)
    assert "--api-keys " not in build_parser().format_help()


def test_values_are_parsed_once_into_typed_values():
    settings = Settings.load(
        [
            "--cors-origins", "https://chat.example.com",
            "--trusted-proxies", "10.0.0.0/8",
            "--ollama-models", "fast=llama3.2:1b,*=llama3.2",
            "--openai-headers", '{"X-Title": "chat"}',
            "--provider", "Ollama, local",
            "--models-allowed", "a, b",
            "--local-model", "~/models/m.gguf",
        ],
        {},
    )  # fmt: skip
    assert isinstance(settings.cors, CorsPolicy)
    assert settings.cors is settings.cors
    assert settings.cors.allows("https://chat.example.com")
    assert [str(net) for net in settings.proxy_networks] == ["10.0.0.0/8"]
    ollama = settings.model_maps["ollama"]
    assert isinstance(ollama, ModelMap)
    assert (ollama.resolve("fast"), ollama.resolve("other")) == ("llama3.2:1b", "llama3.2")
    assert settings.upstream_headers["openai"] == {"X-Title": "chat"}
    assert settings.upstream_headers["openrouter"] == {}
    assert settings.provider_names == ("ollama", "local")
    assert settings.allowed_models == ("a", "b") == settings.request_limits.models_allowed
    assert settings.local_model_path == Path.home() / "models" / "m.gguf"
    assert Settings().local_model_path is None
    assert Settings().provider_names == ("auto",)


# -- --help, for a person


def help_text() -> str:
    result = subprocess.run([sys.executable, "app.py", "--help"], cwd=ROOT, capture_output=True, text=True, check=True)
    return result.stdout


def sections(text: str) -> dict[str, str]:
    """--help cut at its unindented headings ("server:", "examples:")."""
    out: dict[str, str] = {}
    title = ""
    for line in text.splitlines():
        if line and not line.startswith(" ") and line.endswith(":"):
            title = line[:-1]
            out[title] = ""
        elif title:
            out[title] += line + "\n"
    return out


def test_help_groups_the_flags_a_person_looks_for_together():
    found = sections(help_text())
    assert list(found)[1:] == [
        "server",
        "model servers",
        "the built-in model",
        "timeouts (seconds)",
        "limits and keys",
        "resumable streams",
        "logging",
        "examples",
    ]
    expected = {
        "server": ["--host", "--port", "--cors-origins", "--trusted-proxies", "--static-dir"],
        "model servers": ["--provider", "--ollama-url", "--openai-base-url", "--openrouter-model", "--model"],
        "the built-in model": ["--local-model", "--local-queue", "--local-threads"],
        "timeouts (seconds)": ["--connect-timeout", "--first-token-timeout", "--idle-timeout", "--shutdown-grace"],
        "limits and keys": ["--api-keys-file", "--rate-per-minute", "--max-streams", "--redis-url-file"],
        "resumable streams": ["--resumable", "--resume-grace", "--resume-retention"],
        "logging": ["--log-level", "--log-format", "--log-prompts"],
    }
    for title, flags in expected.items():
        for flag in flags:
            assert re.search(rf"^  {flag}\b", found[title], re.MULTILINE), (flag, title)
    # The secrets have no flag; each group says which of its variables are secrets.
    assert "OPENROUTER_API_KEY" in found["model servers"]
    assert "--openrouter-api-key " not in found["model servers"]
    assert "LLM_SSE_API_KEYS" in found["limits and keys"]
    assert "REDIS_URL," in found["limits and keys"]


def test_help_ends_with_three_examples_that_run():
    examples = sections(help_text())["examples"]
    commands = [line.strip() for line in examples.splitlines() if line.strip().startswith("python app.py")]
    assert len(commands) == 3
    for command in commands:
        argv = [word for word in command.split()[2:]]
        Settings.load(argv, {})  # each is a valid command line


def flag_lines(text: str) -> list[tuple[str, str, str]]:
    """(flag, metavar, variable) for each flag in --help, read from the text a person reads."""
    entries = re.split(r"\n(?=  --)", text.split("\n\n", 1)[1])  # past the usage line: one entry per flag
    found = []
    for entry in entries:
        match = re.match(r"(--[a-z0-9-]+) ([A-Z]+) .*?\(([A-Z][A-Z0-9_]+); default: ", " ".join(entry.split()))
        if match:
            found.append((match[1], match[2], match[3]))
    return found


VALID = {
    "--host": "0.0.0.0",
    "--provider": "ollama",
    "--cors-origins": "https://chat.example.com",
    "--trusted-proxies": "10.0.0.0/8",
    "--injection": "block",
    "--log-level": "debug",
    "--log-format": "json",
    "--openai-headers": '{"X-Title": "t"}',
    "--openrouter-headers": '{"X-Title": "t"}',
    "--ollama-models": "a=b",
    "--openai-models": "a=b",
    "--openrouter-models": "a=b",
}
BY_METAVAR = {"N": "4099", "SECONDS": "7.5", "X": "3.5", "BOOL": "true", "URL": "http://h.example:1", "PATH": "/x"}


def test_each_flag_in_help_and_the_variable_it_names_set_the_same_setting():
    lines = flag_lines(build_parser().format_help())
    assert len(lines) > 50
    defaults = Settings()
    for flag, metavar, variable in lines:
        value = VALID.get(flag) or BY_METAVAR.get(metavar, "some-text")
        by_flag = Settings.load([flag, value], {})
        by_variable = Settings.load([], {variable: value})
        changed = [name for name in by_flag.sources if getattr(by_flag, name) != getattr(defaults, name)]
        assert len(changed) == 1, (flag, changed)
        assert getattr(by_variable, changed[0]) == getattr(by_flag, changed[0]), (flag, variable)


def test_a_secret_is_set_by_its_variable_only():
    settings = Settings.load([], {"LLM_SSE_API_KEYS": "k-0123456789abcdefghij", "REDIS_URL": "redis://r:6379"})
    assert settings.api_key_list == ("k-0123456789abcdefghij",)
    assert settings.redis_url == "redis://r:6379"
    with pytest.raises(SystemExit):
        Settings.load(["--redis-url", "redis://r:6379"], {})


# -- docs/configuration.md


def test_the_configuration_page_is_current():
    committed = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert committed == markdown(), "docs/configuration.md is stale: run `make configuration-docs`"


def test_the_configuration_page_is_printed_by_the_settings_module():
    result = subprocess.run(
        [sys.executable, "-m", "sse.settings", "--markdown"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.startswith("# Configuration\n")
    assert "| `--local-model PATH` | `LLM_SSE_LOCAL_MODEL` |" in result.stdout
    assert "| (environment only) | `LLM_SSE_API_KEYS` |" in result.stdout


def test_every_variable_the_docs_name_is_a_setting():
    known = {line[2] for line in flag_lines(build_parser().format_help())}
    known |= {"LLM_SSE_API_KEYS"}  # a secret: named in the group's note, not on a flag line
    known |= {"LLM_SSE_BENCH_CACHE"}  # not the service's: where `make injection-corpus` builds the corpus
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "deploy").rglob("*"))]
    for page in pages:
        if page.is_file():
            for variable in re.findall(r"\bLLM_SSE_[A-Z0-9_]*[A-Z0-9]", page.read_text(errors="replace")):
                assert variable in known, f"{page.relative_to(ROOT)} names {variable}, which is no setting"


def test_a_bad_setting_exits_2_with_a_message():
    result = subprocess.run(
        [sys.executable, "app.py", "--port", "x"], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert "--port must be an integer" in result.stderr
