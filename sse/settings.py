"""Every setting of the service, in one table.

Each setting is a dataclass field with its default, its environment variable
and its help text; ``--help``, the environment and the README all follow from
this table.  Precedence: command-line flag, then environment, then default.
Values are checked once here, so a typo fails at start-up with a message that
names the setting, not at the first request.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from .auth import BadKey, check_key
from .chat import RequestLimits
from .clientip import parse_networks
from .cors import CorsPolicy
from .injection import MODES
from .limits import Limits
from .routing import ModelMap

# One server, a Redis Cluster, or a primary found through Sentinel (sse/redis_topology.py).
REDIS_SCHEMES = (
    "redis://",
    "rediss://",
    "unix://",
    "redis+cluster://",
    "rediss+cluster://",
    "redis+sentinel://",
    "rediss+sentinel://",
)
_TRUE = {"1", "true", "yes", "on"}
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_RESERVED_HEADERS = {"authorization", "content-type", "content-length", "host", "accept", "transfer-encoding"}
_FALSE = {"0", "false", "no", "off", ""}


def setting(
    default: Any,
    env: str,
    help: str,
    *,
    minimum: float | None = None,
    secret: bool = False,
) -> Any:
    """Declare one setting (a dataclass field carrying its env name and help).

    A ``secret`` (an API key, a URL that may carry a password) is read from the
    environment only, never from a flag (flags show in ``ps`` and shell
    history), and is left out of the settings' ``repr`` so it cannot reach a
    log line by accident.
    """
    return field(
        default=default,
        repr=not secret,
        metadata={"env": env, "help": help, "minimum": minimum, "secret": secret},
    )


def _default_static_dir() -> str:
    return str(Path(__file__).resolve().parent.parent / "static")


@dataclass(frozen=True)
class Settings:
    # -- listening
    host: str = setting("127.0.0.1", "LLM_SSE_HOST", "address to listen on")
    port: int = setting(8080, "LLM_SSE_PORT", "TCP port to listen on", minimum=0)

    # -- upstream
    provider: str = setting(
        "auto",
        "LLM_SSE_PROVIDER",
        "model servers to try, in order, comma-separated: ollama, openai, openrouter, local (the built-in model); "
        "or 'auto' (Ollama if it answers at start-up, else the built-in model)",
    )
    provider_cooldown: float = setting(
        30.0,
        "LLM_SSE_PROVIDER_COOLDOWN",
        "seconds a provider that failed (unreachable, timeout, 429, 5xx) is skipped while others remain; 0: never",
        minimum=0.0,
    )
    model: str = setting(
        "",
        "LLM_SSE_MODEL",
        "model used when a request names none (empty: each provider's own default, else the first it lists)",
    )
    ollama_url: str = setting("http://127.0.0.1:11434", "OLLAMA_URL", "base URL of the Ollama server")
    ollama_model: str = setting("", "LLM_SSE_OLLAMA_MODEL", "Ollama's default model (overrides --model for Ollama)")
    ollama_models: str = setting(
        "", "LLM_SSE_OLLAMA_MODELS", "map requested model names to Ollama's: 'requested=name,...', '*' for any other"
    )
    openai_base_url: str = setting(
        "https://api.openai.com/v1",
        "OPENAI_BASE_URL",
        "base URL of the OpenAI-compatible server (vLLM, llama.cpp, LM Studio: e.g. http://127.0.0.1:8000/v1)",
    )
    openai_api_key: str = setting("", "OPENAI_API_KEY", "API key of the OpenAI-compatible server", secret=True)
    openai_api_key_file: str = setting(
        "", "OPENAI_API_KEY_FILE", "file holding the OpenAI-compatible server's API key (instead of OPENAI_API_KEY)"
    )
    openai_model: str = setting("", "LLM_SSE_OPENAI_MODEL", "the OpenAI-compatible server's default model")
    openai_models: str = setting(
        "", "LLM_SSE_OPENAI_MODELS", "map requested model names to the OpenAI-compatible server's, like Ollama's"
    )
    openai_headers: str = setting(
        "", "LLM_SSE_OPENAI_HEADERS", "extra request headers for the OpenAI-compatible server, as a JSON object"
    )
    openrouter_base_url: str = setting("https://openrouter.ai/api/v1", "OPENROUTER_BASE_URL", "OpenRouter's API URL")
    openrouter_api_key: str = setting("", "OPENROUTER_API_KEY", "OpenRouter API key", secret=True)
    openrouter_api_key_file: str = setting(
        "", "OPENROUTER_API_KEY_FILE", "file holding the OpenRouter API key (instead of OPENROUTER_API_KEY)"
    )
    openrouter_model: str = setting(
        "", "LLM_SSE_OPENROUTER_MODEL", "OpenRouter's default model, e.g. openai/gpt-4o-mini"
    )
    openrouter_models: str = setting(
        "", "LLM_SSE_OPENROUTER_MODELS", "map requested model names to OpenRouter's, like Ollama's"
    )
    openrouter_headers: str = setting(
        "",
        "LLM_SSE_OPENROUTER_HEADERS",
        'extra headers for OpenRouter, as a JSON object, e.g. {"HTTP-Referer": "https://…", "X-Title": "…"}',
    )

    local_queue: int = setting(
        4,
        "LLM_SSE_LOCAL_QUEUE",
        "requests that may wait while the built-in model answers another; beyond, 503 with Retry-After",
        minimum=0,
    )
    local_threads: int = setting(
        0,
        "LLM_SSE_LOCAL_THREADS",
        "CPU threads the built-in model computes with (0: all cores but one)",
        minimum=0,
    )

    # -- timeouts (seconds); see ARCHITECTURE.md for what each one bounds
    connect_timeout: float = setting(
        10.0,
        "LLM_SSE_CONNECT_TIMEOUT",
        "bound on connecting to the upstream and getting its answer's headers",
        minimum=0.001,
    )
    first_token_timeout: float = setting(
        120.0,
        "LLM_SSE_FIRST_TOKEN_TIMEOUT",
        "bound on waiting for the first token (model loads are slow)",
        minimum=0.001,
    )
    idle_timeout: float = setting(
        60.0, "LLM_SSE_IDLE_TIMEOUT", "bound on silence from the upstream after the first token", minimum=0.001
    )
    send_timeout: float = setting(
        30.0, "LLM_SSE_SEND_TIMEOUT", "bound on a write to a client that stopped reading", minimum=0.001
    )
    heartbeat: float = setting(
        15.0, "LLM_SSE_HEARTBEAT", "send a ': ping' comment after this much silence towards the client", minimum=0.01
    )
    body_timeout: float = setting(30.0, "LLM_SSE_BODY_TIMEOUT", "bound on receiving a request's body", minimum=0.001)
    shutdown_grace: float = setting(
        10.0, "LLM_SSE_SHUTDOWN_GRACE", "on SIGTERM, time given to open streams to finish", minimum=0.0
    )

    # -- limits
    max_body_bytes: int = setting(
        1_048_576, "LLM_SSE_MAX_BODY_BYTES", "largest request body accepted (413 above)", minimum=1024
    )
    max_line_bytes: int = setting(
        8_388_608,
        "LLM_SSE_MAX_LINE_BYTES",
        "largest upstream line or event accepted (Ollama's 'context' can be large)",
        minimum=1024,
    )
    max_prompt_chars: int = setting(
        32_000, "LLM_SSE_MAX_PROMPT_CHARS", "largest prompt or single message, in characters", minimum=1
    )
    max_input_chars: int = setting(
        128_000, "LLM_SSE_MAX_INPUT_CHARS", "largest whole conversation, in characters", minimum=1
    )
    max_messages: int = setting(200, "LLM_SSE_MAX_MESSAGES", "most messages in one request", minimum=1)
    max_predict: int = setting(
        4096, "LLM_SSE_MAX_PREDICT", "highest 'num_predict' (or 'max_tokens') a request may ask for", minimum=1
    )
    max_ctx: int = setting(32_768, "LLM_SSE_MAX_CTX", "highest 'num_ctx' a request may ask for", minimum=1)
    models_allowed: str = setting(
        "", "LLM_SSE_MODELS_ALLOWED", "comma-separated models clients may ask for (empty: any)"
    )

    # -- protection (README: "Protection")
    api_keys: str = setting(
        "",
        "LLM_SSE_API_KEYS",
        "comma-separated API keys clients must send as 'Authorization: Bearer <key>' "
        "(empty, and no key file: no key needed)",
        secret=True,
    )
    api_keys_file: str = setting(
        "", "LLM_SSE_API_KEYS_FILE", "file of API keys, one per line; blank lines and '#' comments ignored"
    )
    rate_per_minute: float = setting(
        20.0,
        "LLM_SSE_RATE_PER_MINUTE",
        "chat requests one client may start per minute, on average (0: no limit)",
        minimum=0.0,
    )
    rate_burst: int = setting(
        5, "LLM_SSE_RATE_BURST", "chat requests one client may start at once before the rate applies", minimum=1
    )
    max_streams_per_client: int = setting(
        2, "LLM_SSE_MAX_STREAMS_PER_CLIENT", "answers one client may have streaming at once (0: no limit)", minimum=0
    )
    max_streams: int = setting(
        8, "LLM_SSE_MAX_STREAMS", "answers streaming at once in all; more get 503 server_busy (0: no limit)", minimum=0
    )
    redis_url: str = setting(
        "",
        "REDIS_URL",
        "Redis shared by every instance, e.g. redis://127.0.0.1:6379/0: the rate and stream limits, and "
        "resumable streams (empty: each process keeps its own in memory)",
        secret=True,
    )
    redis_url_file: str = setting(
        "", "REDIS_URL_FILE", "file holding the Redis URL (instead of REDIS_URL, which may carry a password)"
    )
    redis_timeout: float = setting(
        0.5,
        "LLM_SSE_REDIS_TIMEOUT",
        "bound on one Redis call; past it this process limits on its own for a few seconds",
        minimum=0.001,
    )
    stream_lease: float = setting(
        30.0,
        "LLM_SSE_STREAM_LEASE",
        "life of a stream's slot in Redis unless refreshed: a crashed instance's streams free after this",
        minimum=1.0,
    )
    cors_origins: str = setting(
        "",
        "LLM_SSE_CORS_ORIGINS",
        "comma-separated origins (https://chat.example.com) whose pages may call the API; '*' for any; "
        "empty: only the page served here",
    )
    injection: str = setting(
        "flag",
        "LLM_SSE_INJECTION",
        "prompt-injection detector: off, flag (named in 'meta' and the log line) or block (400 prompt_rejected)",
    )

    # -- resumable streams (README, "Resumable streams")
    resumable: bool = setting(
        False,
        "LLM_SSE_RESUMABLE",
        'make streams resumable unless a request says "resumable": false',
    )
    resume_grace: float = setting(
        60.0,
        "LLM_SSE_RESUME_GRACE",
        "seconds a resumable stream keeps generating with no client following it; then it is cancelled",
        minimum=0.0,
    )
    resume_retention: float = setting(
        300.0,
        "LLM_SSE_RESUME_RETENTION",
        "seconds a resumable stream's frames are kept after it ended, for late resumes",
        minimum=0.1,
    )
    resume_max_frames: int = setting(
        10_000,
        "LLM_SSE_RESUME_MAX_FRAMES",
        "most frames kept per resumable stream; over it the oldest go (not meta)",
        minimum=2,
    )
    resume_max_bytes: int = setting(
        2_097_152,
        "LLM_SSE_RESUME_MAX_BYTES",
        "most bytes of frames kept per resumable stream; over it the oldest go (not meta)",
        minimum=1024,
    )
    resume_max_streams: int = setting(
        1000,
        "LLM_SSE_RESUME_MAX_STREAMS",
        "most resumable streams held in this process's memory, live or retained (503 above, when none has ended)",
        minimum=1,
    )
    # -- network
    trusted_proxies: str = setting(
        "",
        "LLM_SSE_TRUSTED_PROXIES",
        "comma-separated addresses or CIDR blocks of reverse proxies whose X-Forwarded-For is believed",
    )

    # -- logging and files
    log_level: str = setting("info", "LLM_SSE_LOG_LEVEL", "debug, info, warning or error")
    log_prompts: bool = setting(
        False, "LLM_SSE_LOG_PROMPTS", "include prompt text in stream log lines (debugging only)"
    )
    static_dir: str = setting(_default_static_dir(), "LLM_SSE_STATIC_DIR", "folder of the chat page served at /")

    def __post_init__(self) -> None:
        try:
            parse_networks(split_list(self.trusted_proxies))
        except ValueError as exc:
            raise SettingsError(f"--trusted-proxies / LLM_SSE_TRUSTED_PROXIES: {exc}") from None
        for f in dataclasses.fields(self):
            minimum = f.metadata.get("minimum")
            value = getattr(self, f.name)
            if minimum is not None and value < minimum:
                raise SettingsError(f"{_flag(f.name)} / {f.metadata['env']} must be at least {minimum}, got {value}")
        for name in ("ollama_models", "openai_models", "openrouter_models"):
            try:
                ModelMap.parse(getattr(self, name), setting=_describe(name))
            except ValueError as exc:
                raise SettingsError(str(exc)) from None
        for name in ("openai_headers", "openrouter_headers"):
            parse_headers(getattr(self, name), setting=_describe(name))
        self._check_protection()
        if self.log_level.lower() not in ("debug", "info", "warning", "error"):
            raise SettingsError(
                f"--log-level / LLM_SSE_LOG_LEVEL must be debug, info, warning or error, got {self.log_level!r}"
            )

    def _check_protection(self) -> None:
        if self.injection not in MODES:
            raise SettingsError(f"--injection / LLM_SSE_INJECTION must be off, flag or block, got {self.injection!r}")
        try:
            CorsPolicy(split_list(self.cors_origins))
        except ValueError as exc:
            raise SettingsError(f"--cors-origins / LLM_SSE_CORS_ORIGINS: {exc}") from None
        if self.redis_url and not self.redis_url.startswith(REDIS_SCHEMES):
            # The URL may hold a password: say what is wrong without echoing it.
            raise SettingsError(
                "REDIS_URL must start with redis://, rediss://, unix://, redis+cluster:// or redis+sentinel://"
            )
        for key in split_list(self.api_keys):
            try:
                check_key(key, "--api-keys / LLM_SSE_API_KEYS")
            except BadKey as exc:
                raise SettingsError(str(exc)) from None

    @property
    def limits(self) -> Limits:
        return Limits(
            rate_per_minute=self.rate_per_minute,
            burst=self.rate_burst,
            streams_per_client=self.max_streams_per_client,
            streams=self.max_streams,
            lease_seconds=self.stream_lease,
        )

    @property
    def request_limits(self) -> RequestLimits:
        return RequestLimits(
            max_prompt_chars=self.max_prompt_chars,
            max_input_chars=self.max_input_chars,
            max_messages=self.max_messages,
            max_predict=self.max_predict,
            max_ctx=self.max_ctx,
            models_allowed=split_list(self.models_allowed),
        )

    @classmethod
    def load(cls, argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from flags (``argv``), then ``environ``, then defaults."""
        environ = os.environ if environ is None else environ
        args = build_parser().parse_args(argv)
        types = get_type_hints(cls)
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = None if f.metadata["secret"] else getattr(args, f.name)
            source = _flag(f.name)
            if raw is None and f.metadata["env"] in environ:
                raw, source = environ[f.metadata["env"]], f.metadata["env"]
            if raw is not None:
                values[f.name] = _convert(raw, types[f.name], source)
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


class SettingsError(ValueError):
    """A setting has a value the service cannot run with."""


def split_list(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def parse_headers(text: str, *, setting: str = "headers") -> dict[str, str]:
    """Extra upstream headers from a JSON object of strings.

    JSON because header values (a page title, a URL) may hold commas and
    equals signs.  ``Authorization`` is refused: the key has its own setting,
    which is kept out of flags and logs.
    """
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise SettingsError(f"{setting} must be a JSON object of header names and values: {exc}") from None
    if not isinstance(data, dict):
        raise SettingsError(f"{setting} must be a JSON object of header names and values")
    headers: dict[str, str] = {}
    for name, value in data.items():
        if not _HEADER_NAME.fullmatch(name):
            raise SettingsError(f"{setting}: {name!r} is not a valid header name")
        if not isinstance(value, str) or "\r" in value or "\n" in value:
            raise SettingsError(f"{setting}: the value of {name!r} must be a one-line string")
        if name.lower() in _RESERVED_HEADERS:
            raise SettingsError(f"{setting}: {name!r} is set by the service itself (put API keys in their own setting)")
        headers[name] = value
    return headers


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _describe(name: str) -> str:
    """How a setting is named in messages: its flag and variable, or the variable alone."""
    f = _FIELDS[name]
    if f.metadata["secret"]:
        return str(f.metadata["env"])
    return f"{_flag(name)} / {f.metadata['env']}"


def _convert(raw: str, kind: Any, source: str) -> Any:
    if kind is bool:
        lowered = raw.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise SettingsError(f"{source} must be true or false, got {raw!r}")
    if kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            raise SettingsError(
                f"{source} must be {'an integer' if kind is int else 'a number'}, got {raw!r}"
            ) from None
    return raw


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llm-sse",
        description="Stream an LLM's tokens to the browser as Server-Sent Events.",
        epilog="Every flag can also be set by the environment variable named in its help; a flag wins.\n"
        "Secrets are read from the environment only (or from the file a *_FILE flag names): "
        + ", ".join(str(f.metadata["env"]) for f in dataclasses.fields(Settings) if f.metadata["secret"])
        + ".",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        # No prefix matching: "--openrouter-api-key KEY" must be refused, not
        # taken as --openrouter-api-key-file (and the key echoed as a path).
        allow_abbrev=False,
    )
    types = get_type_hints(Settings)
    for f in dataclasses.fields(Settings):
        if f.metadata["secret"]:
            continue
        kind = types[f.name]
        metavar = {
            bool: "BOOL",
            int: "N",
            float: "SECONDS"
            if "timeout" in f.name
            or f.name
            in ("heartbeat", "shutdown_grace", "provider_cooldown", "stream_lease", "resume_grace", "resume_retention")
            else "X",
        }.get(kind, "TEXT")
        parser.add_argument(
            _flag(f.name),
            dest=f.name,
            default=None,
            metavar=metavar,
            help=f"{f.metadata['help']} (env {f.metadata['env']}; default: {f.default!r})",
        )
    return parser


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}
