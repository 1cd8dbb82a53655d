"""Every setting of the service, in one table, parsed once into typed values.

Each setting is a dataclass field with its default, its environment variable,
its help text and its group; ``--help``, the environment and
docs/configuration.md (``python -m sse.settings --markdown``) all follow from
this table.  Precedence: command-line flag, then environment, then default.

Values are checked once, here, and what needs parsing (CORS origins, proxy
networks, model maps, extra headers, the provider list, key lists) is parsed
once into the typed values the rest of the service takes (``cors``,
``proxy_networks``, ``model_maps`` ...): a typo fails at start-up with a
message that names the setting -- by the flag when a flag set it -- not at the
first request, and no consumer parses a string again.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import re
import sys
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from .auth import BadKey, check_key
from .chat import RequestLimits
from .clientip import Network, parse_networks
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

# The groups of --help and docs/configuration.md, in the order they are shown.
SERVER = "Server"
MODEL_SERVERS = "Model servers"
BUILT_IN = "The built-in model"
TIMEOUTS = "Timeouts (seconds)"
LIMITS = "Limits and keys"
RESUMABLE = "Resumable streams"
LOGGING = "Logging"
GROUPS = (SERVER, MODEL_SERVERS, BUILT_IN, TIMEOUTS, LIMITS, RESUMABLE, LOGGING)

# The model servers a provider list may name (sse.providers builds them).
PROVIDER_KINDS = ("ollama", "openai", "openrouter", "local")
LOG_FORMATS = ("auto", "console", "json")
LOG_LEVELS = ("debug", "info", "warning", "error")

# Where a value came from (``Settings.sources``).
FLAG = "flag"
ENV = "env"


def setting(
    default: Any,
    env: str,
    help: str,
    *,
    group: str | None = None,
    minimum: float | None = None,
    secret: bool = False,
    shown_default: str | None = None,
) -> Any:
    """Declare one setting (a dataclass field carrying its env name, help and group).

    A setting without a ``group`` belongs to the group of the setting above
    it in the table.  ``shown_default`` is what help and docs print instead of
    a default that depends on the machine (a path).

    A ``secret`` (an API key, a URL that may carry a password) is read from the
    environment only, never from a flag (flags show in ``ps`` and shell
    history), and is left out of the settings' ``repr`` so it cannot reach a
    log line by accident.
    """
    return field(
        default=default,
        repr=not secret,
        metadata={
            "env": env,
            "help": help,
            "group": group,
            "minimum": minimum,
            "secret": secret,
            "shown_default": shown_default,
        },
    )


def _default_static_dir() -> str:
    return str(Path(__file__).resolve().parent.parent / "static")


@dataclass(frozen=True)
class Settings:
    # -- listening
    host: str = setting("127.0.0.1", "LLM_SSE_HOST", "address to listen on", group=SERVER)
    port: int = setting(8080, "LLM_SSE_PORT", "TCP port to listen on", minimum=0)

    # -- upstream
    provider: str = setting(
        "auto",
        "LLM_SSE_PROVIDER",
        "model servers to try, in order, comma-separated: ollama, openai, openrouter, local (the built-in model); "
        "or 'auto' (Ollama if it answers at start-up, else the built-in model)",
        group=MODEL_SERVERS,
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

    local_model: str = setting(
        "",
        "LLM_SSE_LOCAL_MODEL",
        "a GGUF file for the built-in runtime to serve instead of the bundled demo model (a chat model: its "
        "chat template and context length are read from the file; the context is capped at --max-ctx)",
        group=BUILT_IN,
        shown_default="the bundled SmolLM2-135M-Instruct",
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
        group=TIMEOUTS,
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
        1_048_576, "LLM_SSE_MAX_BODY_BYTES", "largest request body accepted (413 above)", minimum=1024, group=LIMITS
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

    # -- protection (docs/protection.md)
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
        "Redis shared by every instance, e.g. redis://127.0.0.1:6379/0, a cluster redis+cluster://host:7000 or "
        "a Sentinel-watched primary redis+sentinel://host:26379/mymaster: the rate and stream limits, and "
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
        group=SERVER,
    )
    injection: str = setting(
        "flag",
        "LLM_SSE_INJECTION",
        "prompt-injection detector: off, flag (named in 'meta' and the log line) or block (400 prompt_rejected)",
        group=LIMITS,
    )

    # -- resumable streams (docs/resumable.md)
    resumable: bool = setting(
        False,
        "LLM_SSE_RESUMABLE",
        'make streams resumable unless a request says "resumable": false',
        group=RESUMABLE,
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
        group=SERVER,
    )

    # -- logging and files
    log_level: str = setting("info", "LLM_SSE_LOG_LEVEL", "debug, info, warning or error", group=LOGGING)
    log_format: str = setting(
        "auto",
        "LLM_SSE_LOG_FORMAT",
        "console (plain lines for a person), json (one JSON object per line, for journald and log files) "
        "or auto (console on a terminal, else json)",
    )
    log_prompts: bool = setting(
        False, "LLM_SSE_LOG_PROMPTS", "include prompt text in stream log lines (debugging only)"
    )
    static_dir: str = setting(
        _default_static_dir(),
        "LLM_SSE_STATIC_DIR",
        "folder of the chat page served at /",
        group=SERVER,
        shown_default="static/ in the checkout",
    )

    # Where each value came from, by setting name: FLAG or ENV (absent: the default).
    sources: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        for f in SETTING_FIELDS:
            minimum = f.metadata["minimum"]
            value = getattr(self, f.name)
            if minimum is not None and value < minimum:
                raise SettingsError(f"{self.name_of(f.name)} must be at least {minimum}, got {value}")
        for name, allowed in (("log_level", LOG_LEVELS), ("log_format", LOG_FORMATS), ("injection", MODES)):
            if getattr(self, name).lower() not in allowed:
                raise SettingsError(f"{self.name_of(name)} must be {_one_of(allowed)}, got {getattr(self, name)!r}")
        if self.redis_url and not self.redis_url.startswith(REDIS_SCHEMES):
            # The URL may hold a password: say what is wrong without echoing it.
            raise SettingsError(
                "REDIS_URL must start with redis://, rediss://, unix://, redis+cluster:// or redis+sentinel://"
            )
        # Parse everything that needs it now: each value is kept, and a bad one stops the start here.
        for name in _PARSED:
            getattr(self, name)

    def name_of(self, name: str) -> str:
        """How a message names a setting: the flag or variable that set it, else both.

        A person who typed ``--port 9000`` reads ``--port`` in the message, not
        a variable they never set.  Secrets have no flag: always the variable.
        """
        f = _FIELDS[name]
        env = str(f.metadata["env"])
        source = self.sources.get(name)
        if f.metadata["secret"] or source == ENV:
            return env
        if source == FLAG:
            return _flag(name)
        return f"{_flag(name)} / {env}"

    # -- the parsed values consumers take

    @functools.cached_property
    def provider_names(self) -> tuple[str, ...]:
        """The model servers to try, in order; ``("auto",)``: Ollama if it answers, else the built-in model."""
        names = split_list(self.provider.lower()) or ("auto",)
        if names == ("auto",):
            return names
        for name in names:
            if name not in PROVIDER_KINDS:
                raise SettingsError(
                    f"{self.name_of('provider')}: unknown provider {name!r}; "
                    f"known: auto, {', '.join(sorted(PROVIDER_KINDS))}"
                )
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise SettingsError(f"{self.name_of('provider')}: {repeated[0]!r} is listed twice")
        return names

    @functools.cached_property
    def proxy_networks(self) -> tuple[Network, ...]:
        """The reverse proxies whose ``X-Forwarded-For`` is believed."""
        try:
            return parse_networks(split_list(self.trusted_proxies))
        except ValueError as exc:
            raise SettingsError(f"{self.name_of('trusted_proxies')}: {exc}") from None

    @functools.cached_property
    def cors(self) -> CorsPolicy:
        """The origins whose pages may call the API."""
        try:
            return CorsPolicy(split_list(self.cors_origins))
        except ValueError as exc:
            raise SettingsError(f"{self.name_of('cors_origins')}: {exc}") from None

    @functools.cached_property
    def model_maps(self) -> Mapping[str, ModelMap]:
        """How each HTTP provider (ollama, openai, openrouter) names the model a request asks for."""
        maps: dict[str, ModelMap] = {}
        for kind in ("ollama", "openai", "openrouter"):
            try:
                mapping = ModelMap.parse(getattr(self, f"{kind}_models"), setting=self.name_of(f"{kind}_models"))
            except ValueError as exc:
                raise SettingsError(str(exc)) from None
            maps[kind] = ModelMap(mapping, default=getattr(self, f"{kind}_model"), fallback_default=self.model)
        return maps

    @functools.cached_property
    def upstream_headers(self) -> Mapping[str, Mapping[str, str]]:
        """Extra request headers for the OpenAI-compatible providers (openai, openrouter)."""
        return {
            kind: parse_headers(getattr(self, f"{kind}_headers"), setting=self.name_of(f"{kind}_headers"))
            for kind in ("openai", "openrouter")
        }

    @functools.cached_property
    def api_key_list(self) -> tuple[str, ...]:
        """The keys given in ``LLM_SSE_API_KEYS`` (the key file is read at start-up, by ``sse.protect``)."""
        keys = split_list(self.api_keys)
        for key in keys:
            try:
                check_key(key, self.name_of("api_keys"))
            except BadKey as exc:
                raise SettingsError(str(exc)) from None
        return keys

    @functools.cached_property
    def allowed_models(self) -> tuple[str, ...]:
        """The models clients may ask for; empty: any."""
        return split_list(self.models_allowed)

    @functools.cached_property
    def local_model_path(self) -> Path | None:
        """The GGUF file the built-in runtime serves; ``None``: the bundled model."""
        text = self.local_model.strip()
        return Path(text).expanduser() if text else None

    @functools.cached_property
    def limits(self) -> Limits:
        return Limits(
            rate_per_minute=self.rate_per_minute,
            burst=self.rate_burst,
            streams_per_client=self.max_streams_per_client,
            streams=self.max_streams,
            lease_seconds=self.stream_lease,
        )

    @functools.cached_property
    def request_limits(self) -> RequestLimits:
        return RequestLimits(
            max_prompt_chars=self.max_prompt_chars,
            max_input_chars=self.max_input_chars,
            max_messages=self.max_messages,
            max_predict=self.max_predict,
            max_ctx=self.max_ctx,
            models_allowed=self.allowed_models,
        )

    @classmethod
    def load(cls, argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from flags (``argv``), then ``environ``, then defaults."""
        environ = os.environ if environ is None else environ
        args = build_parser().parse_args(argv)
        types = get_type_hints(cls)
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        for f in SETTING_FIELDS:
            env = str(f.metadata["env"])
            raw, source = (None if f.metadata["secret"] else getattr(args, f.name)), FLAG
            if raw is None and env in environ:
                raw, source = environ[env], ENV
            if raw is not None:
                values[f.name] = _convert(raw, types[f.name], _flag(f.name) if source == FLAG else env)
                sources[f.name] = source
        return cls(**values, sources=sources)

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


def _one_of(values: Sequence[str]) -> str:
    return ", ".join(values[:-1]) + " or " + values[-1]


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


# -- the table, as --help and docs/configuration.md show it

SETTING_FIELDS: tuple[dataclasses.Field[Any], ...] = tuple(
    f for f in dataclasses.fields(Settings) if "env" in f.metadata
)
_FIELDS = {f.name: f for f in SETTING_FIELDS}
_PARSED = (
    "provider_names",
    "proxy_networks",
    "cors",
    "model_maps",
    "upstream_headers",
    "api_key_list",
    "allowed_models",
    "local_model_path",
)
_SECONDS = {"heartbeat", "shutdown_grace", "provider_cooldown", "stream_lease", "resume_grace", "resume_retention"}
_PATHS = {"local_model", "static_dir"}

EXAMPLES = (
    ("python app.py --port 9000", 'serve on another port (with make: make serve ARGS="--port 9000")'),
    (
        "python app.py --local-model ~/models/qwen2.5-1.5b-instruct-q4_k_m.gguf",
        "the built-in runtime with a GGUF chat model of your own",
    ),
    (
        "python app.py --provider ollama,local --ollama-url http://gpu-box:11434 --model llama3.2",
        "Ollama on another machine, the built-in model while it is down",
    ),
)


def group_of(f: dataclasses.Field[Any]) -> str:
    """A setting's group: its own, else that of the setting above it in the table."""
    group = SERVER
    for each in SETTING_FIELDS:
        group = each.metadata["group"] or group
        if each.name == f.name:
            break
    return group


def shown_default(f: dataclasses.Field[Any]) -> str:
    """The default as a person reads it (no machine paths, 'empty' for nothing)."""
    if f.metadata["shown_default"] is not None:
        return str(f.metadata["shown_default"])
    if isinstance(f.default, bool):
        return "true" if f.default else "false"
    if f.default == "":
        return "empty"
    return str(f.default)


def _metavar(f: dataclasses.Field[Any], kind: Any) -> str:
    if kind is bool:
        return "BOOL"
    if kind is int:
        return "N"
    if kind is float:
        return "SECONDS" if "timeout" in f.name or f.name in _SECONDS else "X"
    if f.name.endswith("_file") or f.name in _PATHS:
        return "PATH"
    if f.name.endswith("_url"):
        return "URL"
    return "TEXT"


def _secrets_of(group: str) -> list[dataclasses.Field[Any]]:
    return [f for f in SETTING_FIELDS if f.metadata["secret"] and group_of(f) == group]


def build_parser() -> argparse.ArgumentParser:
    examples = "\n".join(f"  {command}\n      {what}" for command, what in EXAMPLES)
    parser = argparse.ArgumentParser(
        prog="llm-sse",
        usage='%(prog)s [--flag VALUE ...]   (or: python app.py ..., make serve ARGS="...")',
        description="Stream an LLM's tokens to the browser as Server-Sent Events.\n\n"
        "Every flag can also be set by the environment variable named in its help; a flag wins.\n"
        "docs/configuration.md describes every setting.",
        epilog=f"examples:\n{examples}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        # No prefix matching: "--openrouter-api-key KEY" must be refused, not
        # taken as --openrouter-api-key-file (and the key echoed as a path).
        allow_abbrev=False,
    )
    types = get_type_hints(Settings)
    groups: dict[str, argparse._ArgumentGroup] = {}
    for name in GROUPS:
        secrets = _secrets_of(name)
        description = None
        if secrets:
            names = ", ".join(str(f.metadata["env"]) for f in secrets)
            description = textwrap.fill(
                f"Secrets have no flag: {names} come from the environment, or from the file a *_FILE flag names.",
                width=78,
            )
        groups[name] = parser.add_argument_group(name.lower(), description)
    for f in SETTING_FIELDS:
        if f.metadata["secret"]:
            continue
        groups[group_of(f)].add_argument(
            _flag(f.name),
            dest=f.name,
            default=None,
            metavar=_metavar(f, types[f.name]),
            help=f"{f.metadata['help']} ({f.metadata['env']}; default: {shown_default(f)})",
        )
    return parser


def markdown() -> str:
    """docs/configuration.md: every setting by group, generated from this table."""
    out = [
        "# Configuration",
        "",
        "<!-- Generated from sse/settings.py by `make configuration-docs`; edit the table there, not this file. -->",
        "",
        "Every setting is a command-line flag and an environment variable: a flag wins over the variable, "
        "the variable over the default. `python app.py --help` prints the same list; with make, pass flags as "
        '`make serve ARGS="--port 9000"`. A bad value stops the start with one sentence that names the flag '
        "or variable that set it.",
        "",
        "Secrets (API keys, the Redis URL, which may carry a password) have no flag, since flags show in `ps` "
        "and in shell history: they come from the environment, or from the file the matching `*_FILE` setting "
        "names (systemd credentials, Docker and Kubernetes secrets). They never appear in a log line.",
        "",
    ]
    types = get_type_hints(Settings)
    for name in GROUPS:
        out += [f"## {name}", "", "| Flag | Environment variable | Default | Meaning |", "| --- | --- | --- | --- |"]
        for f in SETTING_FIELDS:
            if group_of(f) != name:
                continue
            flag = "(environment only)" if f.metadata["secret"] else f"`{_flag(f.name)} {_metavar(f, types[f.name])}`"
            meaning = str(f.metadata["help"])
            if f.metadata["minimum"] is not None:
                meaning += f"; at least {f.metadata['minimum']}"
            cells = [flag, f"`{f.metadata['env']}`", _code(shown_default(f)), meaning]
            cells[3] = cells[3].replace("*", "\\*")  # '*' for any: a star, not emphasis
            out.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
        out.append("")
    out += ["## Examples", ""]
    for command, what in EXAMPLES:
        out += [f"{what[0].upper()}{what[1:]}:", "", "```sh", command, "```", ""]
    return "\n".join(out)


def _code(text: str) -> str:
    return text if text == "empty" or " " in text else f"`{text}`"


def _main(argv: Sequence[str]) -> int:
    if list(argv) == ["--markdown"]:
        sys.stdout.write(markdown())
        return 0
    print("usage: python -m sse.settings --markdown   (prints docs/configuration.md)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
