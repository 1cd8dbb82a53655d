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
from dataclasses import dataclass, field, replace
from typing import Any

from .errors import ApiError, InvalidRequest
from .events import ToolCall

ROLES = ("system", "user", "assistant", "tool")
THINK_LEVELS = ("low", "medium", "high")
TOP_LEVEL_FIELDS = ("prompt", "messages", "model", "options", "think", "resumable", "tools", "tool_choice")
TOOL_CHOICES = ("auto", "none", "required")
MAX_TOOLS = 128
MAX_TOOL_CALLS = 128  # in one assistant message
_TOOL_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,128}")


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
    """One turn.  An assistant turn may carry the tool calls it made; a
    ``tool`` turn is a tool's result, naming the call it answers."""

    role: str
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None  # role "tool": the call this result answers
    tool_name: str | None = None  # role "tool": the tool that ran (Ollama matches results by name)


@dataclass(frozen=True, slots=True)
class Tool:
    """A function the model may ask the client to call (llm-sse never calls it)."""

    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None  # a JSON Schema object

    def as_openai(self) -> dict[str, Any]:
        """The tool in the shape OpenAI and Ollama both take."""
        function: dict[str, Any] = {"name": self.name}
        if self.description is not None:
            function["description"] = self.description
        if self.parameters is not None:
            function["parameters"] = self.parameters
        return {"type": "function", "function": function}


# "auto", "none", "required", or {"type": "function", "function": {"name": ...}}.
ToolChoice = str | dict[str, Any]


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
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice | None = None

    @property
    def input_chars(self) -> int:
        if self.prompt is not None:
            return len(self.prompt)
        return sum(len(m.content) + sum(len(c.arguments) for c in m.tool_calls) for m in self.messages or ())

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
    messages = parse_messages(body["messages"], limits) if has_messages else None
    request = ChatRequest(
        prompt=prompt,
        messages=messages,
        model=parse_model(body.get("model"), limits),
        options=parse_options(body.get("options"), limits),
        think=parse_think(body.get("think")),
        resumable=_parse_resumable(body.get("resumable")),
        tools=parse_tools(body.get("tools"), limits),
    )
    if request.tools and prompt is not None:
        # Tools live in a conversation (Ollama's /api/generate takes none).
        request = replace(request, prompt=None, messages=(Message("user", prompt),))
    if body.get("tool_choice") is not None:
        request = replace(request, tool_choice=parse_tool_choice(body["tool_choice"], request.tools))
    check_input_size(request, limits)
    return request


def check_input_size(request: ChatRequest, limits: RequestLimits) -> None:
    """The whole conversation's size against ``max_input_chars`` (413)."""
    messages = request.messages
    if request.input_chars > limits.max_input_chars:
        raise ApiError(
            f"the conversation has {request.input_chars} characters; the limit is {limits.max_input_chars}",
            status=413,
            code="input_too_long",
            field="messages" if messages is not None else "prompt",
        )


def too_long(field_name: str, size: int, limit: int) -> ApiError:
    return ApiError(
        f"{field_name} has {size} characters; the limit is {limit}",
        status=413,
        code="input_too_long",
        field=field_name,
    )


def check_unicode(value: str, field_name: str) -> None:
    """Reject lone surrogates (JSON's "\\ud800"): they cannot be encoded to UTF-8 downstream."""
    if not value.isascii() and _SURROGATE.search(value):
        raise InvalidRequest(f"{field_name} contains a lone surrogate (\\ud800-\\udfff), not text", field=field_name)


def _parse_prompt(value: Any, limits: RequestLimits) -> str:
    if not isinstance(value, str):
        raise InvalidRequest("'prompt' must be a string", field="prompt")
    check_unicode(value, "prompt")
    if not value.strip():
        raise InvalidRequest("'prompt' must not be empty", field="prompt")
    if len(value) > limits.max_prompt_chars:
        raise too_long("prompt", len(value), limits.max_prompt_chars)
    return value


def parse_messages(value: Any, limits: RequestLimits) -> tuple[Message, ...]:
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
    messages: list[Message] = []
    pending: list[ToolCall] = []  # the last assistant turn's calls not yet answered
    for i, item in enumerate(value):
        where = f"messages[{i}]"
        if not isinstance(item, dict):
            raise InvalidRequest(f"{where} must be an object with 'role' and 'content'", field=where)
        message = parse_message(item, where, limits, MESSAGE_FIELDS)
        if message.role == "assistant" and message.tool_calls:
            pending = list(message.tool_calls)
        elif message.role == "tool":
            message = answer_call(message, pending, where)
        messages.append(message)
    if not any(m.content.strip() or m.tool_calls for m in messages):
        raise InvalidRequest("every message is empty", field="messages")
    return tuple(messages)


MESSAGE_FIELDS = ("role", "content", "tool_calls", "tool_call_id", "tool_name")


def parse_message(item: dict[str, Any], where: str, limits: RequestLimits, allowed: tuple[str, ...]) -> Message:
    """One message in the shape Ollama and OpenAI share (content a string here)."""
    extra = sorted(set(item) - set(allowed))
    if extra:
        raise InvalidRequest(f"{where} has an unknown field {extra[0]!r}", field=f"{where}.{extra[0]}")
    role, content = item.get("role"), item.get("content")
    if role not in ROLES:
        raise InvalidRequest(f"{where}.role must be one of {', '.join(ROLES)}", field=f"{where}.role")
    tool_calls: tuple[ToolCall, ...] = ()
    if item.get("tool_calls") is not None:
        if role != "assistant":
            raise InvalidRequest(f"{where}.tool_calls is only for assistant messages", field=f"{where}.tool_calls")
        tool_calls = parse_tool_calls(item["tool_calls"], f"{where}.tool_calls", id_prefix=_id_prefix(where))
    if content is None and (tool_calls or role == "assistant"):
        content = ""
    if not isinstance(content, str):
        raise InvalidRequest(f"{where}.content must be a string", field=f"{where}.content")
    check_unicode(content, f"{where}.content")
    if len(content) > limits.max_prompt_chars:
        raise too_long(f"{where}.content", len(content), limits.max_prompt_chars)
    tool_call_id = _optional_name(item.get("tool_call_id"), f"{where}.tool_call_id")
    tool_name = _optional_name(item.get("tool_name"), f"{where}.tool_name")
    if (tool_call_id is not None or tool_name is not None) and role != "tool":
        field_name = "tool_call_id" if tool_call_id is not None else "tool_name"
        raise InvalidRequest(f"{where}.{field_name} is only for tool messages", field=f"{where}.{field_name}")
    return Message(role, content, tool_calls, tool_call_id, tool_name)


def answer_call(message: Message, pending: list[ToolCall], where: str) -> Message:
    """Match a tool result to the call it answers, filling in what it left out.

    OpenAI-compatible servers match results by ``tool_call_id``, Ollama by
    ``tool_name``; a client written for either gives only one.  A result
    without an id answers the earliest unanswered call (of its name, when it
    gives one) of the assistant turn before it.
    """
    call = None
    if message.tool_call_id is not None:
        call = next((c for c in pending if c.id == message.tool_call_id), None)
    else:
        call = next((c for c in pending if message.tool_name in (None, c.name)), None)
        if call is None:
            raise InvalidRequest(
                f"{where} is a tool result without 'tool_call_id', and no earlier tool call is left for it to answer",
                field=f"{where}.tool_call_id",
            )
    if call is None:
        return message
    pending.remove(call)
    return replace(message, tool_call_id=call.id, tool_name=message.tool_name or call.name)


def parse_tool_calls(value: Any, where: str, *, id_prefix: str = "call") -> tuple[ToolCall, ...]:
    """An assistant turn's tool calls, OpenAI's shape or Ollama's.

    ``arguments`` may be a JSON string (OpenAI) or an object (Ollama); either
    way it must be a JSON object, kept as compact JSON text.  A call without an
    ``id`` (Ollama's older servers give none) gets one from its position.
    """
    if not isinstance(value, list) or len(value) > MAX_TOOL_CALLS:
        raise InvalidRequest(f"{where} must be a list of at most {MAX_TOOL_CALLS} tool calls", field=where)
    calls = []
    for j, raw in enumerate(value):
        at = f"{where}[{j}]"
        if not isinstance(raw, dict):
            raise InvalidRequest(f"{at} must be an object with 'function'", field=at)
        extra = sorted(set(raw) - {"id", "type", "function", "index"})
        if extra:
            raise InvalidRequest(f"{at} has an unknown field {extra[0]!r}", field=f"{at}.{extra[0]}")
        if raw.get("type", "function") != "function":
            raise InvalidRequest(f"{at}.type must be 'function'", field=f"{at}.type")
        function = raw.get("function")
        if not isinstance(function, dict):
            raise InvalidRequest(f"{at}.function must be an object with 'name' and 'arguments'", field=f"{at}.function")
        name = _tool_name(function.get("name"), f"{at}.function.name")
        arguments = tool_arguments(function.get("arguments"), f"{at}.function.arguments")
        call_id = _optional_name(raw.get("id"), f"{at}.id") or f"{id_prefix}_{j}"
        calls.append(ToolCall(call_id, name, arguments, j))
    return tuple(calls)


def tool_arguments(value: Any, where: str) -> str:
    """A call's arguments as compact JSON text of an object."""
    if value is None:
        return "{}"
    if isinstance(value, str):
        check_unicode(value, where)
        try:
            parsed = json.loads(value) if value.strip() else {}
        except ValueError:
            raise InvalidRequest(f"{where} must be a JSON object (or a string holding one)", field=where) from None
        if not isinstance(parsed, dict):
            raise InvalidRequest(f"{where} must be a JSON object (or a string holding one)", field=where)
        return value if value.strip() else "{}"
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    raise InvalidRequest(f"{where} must be a JSON object (or a string holding one)", field=where)


def parse_tools(value: Any, limits: RequestLimits, where: str = "tools") -> tuple[Tool, ...]:
    """``tools``: functions in OpenAI's (and Ollama's) shape."""
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_TOOLS:
        raise InvalidRequest(f"'{where}' must be a list of at most {MAX_TOOLS} tools", field=where)
    tools: list[Tool] = []
    size = 0
    for i, raw in enumerate(value):
        at = f"{where}[{i}]"
        if not isinstance(raw, dict) or raw.get("type") != "function" or not isinstance(raw.get("function"), dict):
            raise InvalidRequest(
                f'{at} must be {{"type": "function", "function": {{"name", "description", "parameters"}}}}', field=at
            )
        extra = sorted(set(raw) - {"type", "function"})
        if extra:
            raise InvalidRequest(f"{at} has an unknown field {extra[0]!r}", field=f"{at}.{extra[0]}")
        function = raw["function"]
        extra = sorted(set(function) - {"name", "description", "parameters", "strict"})
        if extra:
            raise InvalidRequest(f"{at}.function has an unknown field {extra[0]!r}", field=f"{at}.function.{extra[0]}")
        name = _tool_name(function.get("name"), f"{at}.function.name")
        description = function.get("description")
        if description is not None and not isinstance(description, str):
            raise InvalidRequest(f"{at}.function.description must be a string", field=f"{at}.function.description")
        parameters = function.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            raise InvalidRequest(
                f"{at}.function.parameters must be a JSON Schema object", field=f"{at}.function.parameters"
            )
        if any(t.name == name for t in tools):
            raise InvalidRequest(f"{at}.function.name {name!r} is given twice", field=f"{at}.function.name")
        tool = Tool(name, description, parameters)
        size += len(json.dumps(tool.as_openai(), ensure_ascii=False))
        check_unicode(json.dumps(tool.as_openai(), ensure_ascii=False), at)
        tools.append(tool)
    if size > limits.max_input_chars:
        raise too_long(where, size, limits.max_input_chars)
    return tuple(tools)


def parse_tool_choice(value: Any, tools: tuple[Tool, ...], where: str = "tool_choice") -> ToolChoice:
    """``tool_choice`` in OpenAI's shape: a mode, or one function by name."""
    if value in TOOL_CHOICES:
        return str(value)
    if isinstance(value, dict) and value.get("type") == "function" and isinstance(value.get("function"), dict):
        name = value["function"].get("name")
        if any(t.name == name for t in tools):
            return {"type": "function", "function": {"name": name}}
        raise InvalidRequest(f"{where} names a function that is not in 'tools': {name!r}", field=where)
    raise InvalidRequest(
        f'{where} must be one of {", ".join(TOOL_CHOICES)} or {{"type": "function", "function": {{"name": ...}}}}',
        field=where,
    )


def _id_prefix(where: str) -> str:
    """``messages[3]`` -> ``call_3``: ids made for calls that came without one."""
    return "call_" + "".join(c for c in where if c.isdigit())


def _tool_name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _TOOL_NAME.fullmatch(value):
        raise InvalidRequest(
            f"{where} must be 1 to 128 letters, digits, '_', '-', '.' or ':'",
            field=where,
        )
    return value


def _optional_name(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > 200 or any(ord(c) < 0x20 for c in value):
        raise InvalidRequest(f"{where} must be a non-empty string of at most 200 characters", field=where)
    check_unicode(value, where)
    return value


def parse_model(value: Any, limits: RequestLimits) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise InvalidRequest("'model' must be a non-empty string of at most 200 characters", field="model")
    if any(ord(c) < 0x20 for c in value):
        raise InvalidRequest("'model' must not contain control characters", field="model")
    check_unicode(value, "model")
    if limits.models_allowed and value not in limits.models_allowed:
        raise InvalidRequest(
            f"model {value!r} is not offered here; choose one of: {', '.join(limits.models_allowed)}",
            code="model_not_allowed",
            field="model",
        )
    return value


def parse_think(value: Any) -> bool | str | None:
    if value is None or isinstance(value, bool):
        return value
    if value in THINK_LEVELS:
        return str(value)
    raise InvalidRequest(f"'think' must be true, false or one of {', '.join(THINK_LEVELS)}", field="think")


def _parse_resumable(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise InvalidRequest("'resumable' must be true or false", field="resumable")


def parse_options(value: Any, limits: RequestLimits) -> dict[str, Any]:
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
        options[name] = check_option(name, rule, raw, where, limits)
    return options


def check_option(name: str, rule: OptionRule, raw: Any, where: str, limits: RequestLimits) -> Any:
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
            check_unicode(stop, where)
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
