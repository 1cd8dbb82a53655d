"""The chat request: parsed, validated and normalised once, at the door.

Everything after this module can trust a ``ChatRequest``: exactly one of
``prompt`` or ``messages``, roles from an allowlist, option names and values
within their ranges.  Every violation is an ``InvalidRequest`` naming the field,
so a client never has to guess what to fix.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from .errors import ApiError, InvalidRequest

ROLES = ("system", "user", "assistant")
THINK_LEVELS = ("low", "medium", "high")
TOP_LEVEL_FIELDS = ("prompt", "messages", "model", "options", "think", "resumable")


@dataclass(frozen=True, slots=True)
class OptionRule:
    """What one generation option may hold."""

    kind: type  # int, float or str (a list of strings for "stop")
    low: float | None = None
    high: float | None = None


# Option names are Ollama's (the request format follows Ollama's); providers
# translate them.  ``max_tokens`` is accepted as an alias of ``num_predict``.
OPTION_RULES: dict[str, OptionRule] = {
    "temperature": OptionRule(float, 0.0, 2.0),
    "top_p": OptionRule(float, 0.0, 1.0),
    "min_p": OptionRule(float, 0.0, 1.0),
    "top_k": OptionRule(int, 0, 1000),
    "num_predict": OptionRule(int, 1, None),  # upper bound from the limits
    "num_ctx": OptionRule(int, 1, None),  # upper bound from the limits
    "seed": OptionRule(int, 0, 2**31 - 1),
    "repeat_penalty": OptionRule(float, 0.0, 2.0),
    "presence_penalty": OptionRule(float, -2.0, 2.0),
    "frequency_penalty": OptionRule(float, -2.0, 2.0),
    "stop": OptionRule(str),
}
OPTION_ALIASES = {"max_tokens": "num_predict"}
MAX_STOP_SEQUENCES = 8
MAX_STOP_LENGTH = 100
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class RequestLimits:
    """The bounds a request must respect (from the settings)."""

    max_prompt_chars: int = 32_000
    max_input_chars: int = 128_000
    max_messages: int = 200
    max_predict: int = 4096
    max_ctx: int = 32_768
    models_allowed: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Message:
    role: str
    content: str


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A validated request.  ``model`` is ``None`` when the server's default applies."""

    prompt: str | None = None
    messages: tuple[Message, ...] | None = None
    model: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    think: bool | str | None = None
    # ``None``: the server's default (``LLM_SSE_RESUMABLE``) decides.
    resumable: bool | None = None

    @property
    def input_chars(self) -> int:
        if self.prompt is not None:
            return len(self.prompt)
        return sum(len(m.content) for m in self.messages or ())

    def as_messages(self) -> tuple[Message, ...]:
        """The conversation, with a bare prompt seen as one user message."""
        if self.messages is not None:
            return self.messages
        return (Message("user", self.prompt or ""),)


def parse_json_body(raw: bytes) -> Any:
    """Decode a request body, with the position of the first error.

    The body must be UTF-8 (a UTF-8 BOM is tolerated, as RFC 8259 allows):
    ``json.loads`` would also take UTF-16 and UTF-32, which the API does not.
    """
    if json.detect_encoding(raw) not in ("utf-8", "utf-8-sig"):
        raise InvalidRequest("the body is not valid UTF-8 (UTF-16 or UTF-32?)", code="invalid_json", field="body")
    try:
        return json.loads(raw)
    except UnicodeDecodeError:
        raise InvalidRequest("the body is not valid UTF-8", code="invalid_json", field="body") from None
    except json.JSONDecodeError as exc:
        raise InvalidRequest(
            f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            code="invalid_json",
            field="body",
        ) from None
    except RecursionError:
        # json.loads recurses once per nesting level; a body of a million '['
        # must be a 400, not a crash.
        raise InvalidRequest("the body is nested too deeply", code="invalid_json", field="body") from None
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        raise InvalidRequest(f"the body is not usable JSON: {exc}", code="invalid_json", field="body") from None


def parse_chat_request(body: Any, limits: RequestLimits = RequestLimits()) -> ChatRequest:
    """Validate a decoded JSON body into a ``ChatRequest``."""
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object", field="body")
    unknown = sorted(set(body) - set(TOP_LEVEL_FIELDS))
    if unknown:
        raise InvalidRequest(
            f"unknown field {unknown[0]!r}; expected some of: {', '.join(TOP_LEVEL_FIELDS)}",
            field=unknown[0],
        )
    has_prompt = body.get("prompt") is not None
    has_messages = body.get("messages") is not None
    if has_prompt == has_messages:
        raise InvalidRequest("give exactly one of 'prompt' or 'messages'", field="prompt")

    prompt = _parse_prompt(body["prompt"], limits) if has_prompt else None
    messages = _parse_messages(body["messages"], limits) if has_messages else None
    request = ChatRequest(
        prompt=prompt,
        messages=messages,
        model=_parse_model(body.get("model"), limits),
        options=_parse_options(body.get("options"), limits),
        think=_parse_think(body.get("think")),
        resumable=_parse_resumable(body.get("resumable")),
    )
    if request.input_chars > limits.max_input_chars:
        raise ApiError(
            f"the conversation has {request.input_chars} characters; the limit is {limits.max_input_chars}",
            status=413,
            code="input_too_long",
            field="messages" if messages is not None else "prompt",
        )
    return request


def _too_long(field_name: str, size: int, limit: int) -> ApiError:
    return ApiError(
        f"{field_name} has {size} characters; the limit is {limit}",
        status=413,
        code="input_too_long",
        field=field_name,
    )


def _check_unicode(value: str, field_name: str) -> None:
    """Reject lone surrogates (JSON's "\\ud800"): they cannot be encoded to UTF-8 downstream."""
    if not value.isascii() and _SURROGATE.search(value):
        raise InvalidRequest(f"{field_name} contains a lone surrogate (\\ud800-\\udfff), not text", field=field_name)


def _parse_prompt(value: Any, limits: RequestLimits) -> str:
    if not isinstance(value, str):
        raise InvalidRequest("'prompt' must be a string", field="prompt")
    _check_unicode(value, "prompt")
    if not value.strip():
        raise InvalidRequest("'prompt' must not be empty", field="prompt")
    if len(value) > limits.max_prompt_chars:
        raise _too_long("prompt", len(value), limits.max_prompt_chars)
    return value


def _parse_messages(value: Any, limits: RequestLimits) -> tuple[Message, ...]:
    if not isinstance(value, list):
        raise InvalidRequest("'messages' must be a list", field="messages")
    if not value:
        raise InvalidRequest("'messages' must not be empty", field="messages")
    if len(value) > limits.max_messages:
        raise ApiError(
            f"'messages' has {len(value)} entries; the limit is {limits.max_messages}",
            status=413,
            code="input_too_long",
            field="messages",
        )
    messages = []
    for i, item in enumerate(value):
        where = f"messages[{i}]"
        if not isinstance(item, dict):
            raise InvalidRequest(f"{where} must be an object with 'role' and 'content'", field=where)
        extra = sorted(set(item) - {"role", "content"})
        if extra:
            raise InvalidRequest(f"{where} has an unknown field {extra[0]!r}", field=f"{where}.{extra[0]}")
        role, content = item.get("role"), item.get("content")
        if role not in ROLES:
            raise InvalidRequest(f"{where}.role must be one of {', '.join(ROLES)}", field=f"{where}.role")
        if not isinstance(content, str):
            raise InvalidRequest(f"{where}.content must be a string", field=f"{where}.content")
        _check_unicode(content, f"{where}.content")
        if len(content) > limits.max_prompt_chars:
            raise _too_long(f"{where}.content", len(content), limits.max_prompt_chars)
        messages.append(Message(role, content))
    if not any(m.content.strip() for m in messages):
        raise InvalidRequest("every message is empty", field="messages")
    return tuple(messages)


def _parse_model(value: Any, limits: RequestLimits) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise InvalidRequest("'model' must be a non-empty string of at most 200 characters", field="model")
    if any(ord(c) < 0x20 for c in value):
        raise InvalidRequest("'model' must not contain control characters", field="model")
    _check_unicode(value, "model")
    if limits.models_allowed and value not in limits.models_allowed:
        raise InvalidRequest(
            f"model {value!r} is not offered here; choose one of: {', '.join(limits.models_allowed)}",
            code="model_not_allowed",
            field="model",
        )
    return value


def _parse_think(value: Any) -> bool | str | None:
    if value is None or isinstance(value, bool):
        return value
    if value in THINK_LEVELS:
        return str(value)
    raise InvalidRequest(f"'think' must be true, false or one of {', '.join(THINK_LEVELS)}", field="think")


def _parse_resumable(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise InvalidRequest("'resumable' must be true or false", field="resumable")


def _parse_options(value: Any, limits: RequestLimits) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidRequest("'options' must be an object", field="options")
    options: dict[str, Any] = {}
    for raw_name, raw in value.items():
        raw_name = str(raw_name)
        name = OPTION_ALIASES.get(raw_name, raw_name)
        where = f"options.{raw_name}"
        rule = OPTION_RULES.get(name)
        if rule is None:
            allowed = ", ".join(sorted([*OPTION_RULES, *OPTION_ALIASES]))
            raise InvalidRequest(f"unknown option {raw_name!r}; allowed: {allowed}", field=where)
        if name in options:
            raise InvalidRequest(f"option {name!r} is given twice", field=where)
        options[name] = _check_option(name, rule, raw, where, limits)
    return options


def _check_option(name: str, rule: OptionRule, raw: Any, where: str, limits: RequestLimits) -> Any:
    if name == "stop":
        stops = [raw] if isinstance(raw, str) else raw
        if (
            not isinstance(stops, list)
            or not 0 < len(stops) <= MAX_STOP_SEQUENCES
            or not all(isinstance(s, str) and 0 < len(s) <= MAX_STOP_LENGTH for s in stops)
        ):
            raise InvalidRequest(
                f"{where} must be a string or a list of 1 to {MAX_STOP_SEQUENCES} non-empty strings "
                f"of at most {MAX_STOP_LENGTH} characters",
                field=where,
            )
        for stop in stops:
            _check_unicode(stop, where)
        return list(stops)
    high = rule.high
    if name == "num_predict":
        high = limits.max_predict
    elif name == "num_ctx":
        high = limits.max_ctx
    is_int = isinstance(raw, int) and not isinstance(raw, bool)
    is_finite = isinstance(raw, float) and math.isfinite(raw)
    value: float
    if rule.kind is int:
        if not (is_int or (is_finite and raw.is_integer())):
            raise InvalidRequest(f"{where} must be an integer", field=where)
        value = int(raw)
    else:
        if not (is_int or is_finite):
            raise InvalidRequest(f"{where} must be a number", field=where)
        # float() of an integer of hundreds of digits overflows; it is out of range anyway.
        value = float(raw) if not is_int or abs(raw) < 2**53 else (math.inf if raw > 0 else -math.inf)
    if (rule.low is not None and value < rule.low) or (high is not None and value > high):
        raise InvalidRequest(f"{where} must be between {_fmt(rule.low)} and {_fmt(high)}", field=where)
    return value


def _fmt(bound: float | None) -> str:
    if bound is None:
        return "any"
    return str(int(bound)) if float(bound).is_integer() else str(bound)
