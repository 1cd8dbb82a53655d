"""OpenAI's Chat Completions request, validated into llm-sse's ``ChatRequest``.

``POST /v1/chat/completions`` takes what the ``openai`` SDKs send; every field
is checked once here, with OpenAI's field names in the messages, and mapped
to the same request ``/api/chat`` builds (options under Ollama's names, which
the providers translate).  A field llm-sse does not implement is a 400 that
says so, never silently ignored -- except the few that change nothing about
the answer (``user``, ``store``, ``metadata``, ``parallel_tool_calls``, ``n``
of 1, ``logprobs`` false, ``response_format`` text).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .chat import (
    MESSAGE_FIELDS,
    OPTION_RULES,
    ChatRequest,
    RequestLimits,
    check_input_size,
    check_option,
    parse_messages,
    parse_model,
    parse_tool_choice,
    parse_tools,
)
from .errors import InvalidRequest

# OpenAI's sampling fields -> the option names of ``ChatRequest``.
OPTION_FIELDS = {
    "max_tokens": "num_predict",
    "max_completion_tokens": "num_predict",
    "temperature": "temperature",
    "top_p": "top_p",
    "stop": "stop",
    "seed": "seed",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
}
# reasoning_effort -> ``think``: off, or a level (the finest and coarsest map to the nearest).
REASONING_EFFORT: dict[str, bool | str] = {
    "none": False,
    "minimal": "low",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "xhigh": "high",
}
# Accepted and without effect on the answer.
IGNORED_FIELDS = ("user", "store", "metadata", "parallel_tool_calls", "n", "logprobs", "response_format")
FIELDS = (
    "model",
    "messages",
    "stream",
    "stream_options",
    "reasoning_effort",
    "tools",
    "tool_choice",
    *OPTION_FIELDS,
    *IGNORED_FIELDS,
)
# Fields of an assistant message the API itself answers with, so a client that sends its
# answer back as it came (the SDKs' own helpers do) is not refused for them.
ECHOED_FIELDS = ("name", "refusal", "annotations", "parsed", "reasoning_content", "audio")
ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant", "tool": "tool"}

DEFAULT_LIMITS = RequestLimits()


@dataclass(frozen=True, slots=True)
class OpenAIChatRequest:
    """A Chat Completions request: the chat itself and how to answer it."""

    chat: ChatRequest
    model: str  # as the client named it: echoed in every chunk
    stream: bool
    include_usage: bool


def parse_openai_request(body: Any, limits: RequestLimits = DEFAULT_LIMITS) -> OpenAIChatRequest:
    """Validate a decoded JSON body of ``POST /v1/chat/completions``."""
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object", field="body")
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise InvalidRequest(
            f"unknown or unsupported field {unknown[0]!r}; this server takes: {', '.join(FIELDS)}",
            field=unknown[0],
        )
    _check_ignored(body)
    if body.get("model") is None:
        raise InvalidRequest("'model' is required (GET /v1/models lists them)", field="model")
    model = parse_model(body["model"], limits)
    assert model is not None
    if body.get("messages") is None:
        raise InvalidRequest("'messages' is required", field="messages")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be true or false", field="stream")
    tools = parse_tools(body.get("tools"), limits)
    chat = ChatRequest(
        messages=parse_messages(_native_messages(body["messages"]), limits),
        model=model,
        options=_options(body, limits),
        think=_think(body.get("reasoning_effort")),
        resumable=False,
        tools=tools,
        tool_choice=parse_tool_choice(body["tool_choice"], tools) if body.get("tool_choice") is not None else None,
    )
    check_input_size(chat, limits)
    return OpenAIChatRequest(chat, model, bool(stream), _include_usage(body.get("stream_options")))


def _check_ignored(body: dict[str, Any]) -> None:
    """The fields taken without effect must ask for nothing llm-sse would not do."""
    n = body.get("n")
    if n is not None and n != 1:
        raise InvalidRequest("'n' must be 1: one answer per request", field="n")
    if body.get("logprobs") not in (None, False):
        raise InvalidRequest("'logprobs' is not supported", field="logprobs")
    response_format = body.get("response_format")
    if response_format is not None and response_format != {"type": "text"}:
        raise InvalidRequest("'response_format' other than text is not supported", field="response_format")
    parallel = body.get("parallel_tool_calls")
    if parallel is not None and not isinstance(parallel, bool):
        raise InvalidRequest("'parallel_tool_calls' must be true or false", field="parallel_tool_calls")
    if body.get("user") is not None and not isinstance(body["user"], str):
        raise InvalidRequest("'user' must be a string", field="user")


def _native_messages(value: Any) -> Any:
    """OpenAI's message shapes in ``/api/chat``'s: ``developer`` is ``system``,
    text parts are joined, what an answer echoed back carries besides is dropped."""
    if not isinstance(value, list):
        return value  # parse_messages says what is wrong
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            out.append(item)
            continue
        where = f"messages[{i}]"
        extra = sorted(set(item) - {*MESSAGE_FIELDS, *ECHOED_FIELDS} - {"tool_name"})
        if extra:
            raise InvalidRequest(f"{where} has an unknown field {extra[0]!r}", field=f"{where}.{extra[0]}")
        message = {k: v for k, v in item.items() if k in MESSAGE_FIELDS and k != "tool_name"}
        role = item.get("role")
        if isinstance(role, str) and role in ROLES:
            message["role"] = ROLES[role]
        content = item.get("content")
        if isinstance(content, list):
            message["content"] = _text_of_parts(content, f"{where}.content")
        out.append(message)
    return out


def _text_of_parts(parts: list[Any], where: str) -> str:
    texts = []
    for j, part in enumerate(parts):
        if not isinstance(part, dict) or part.get("type") not in ("text", "refusal"):
            kind = part.get("type") if isinstance(part, dict) else None
            raise InvalidRequest(
                f"{where}[{j}] is a {kind or 'non-text'} part; only text content is supported", field=f"{where}[{j}]"
            )
        text = part.get("text", part.get("refusal"))
        if not isinstance(text, str):
            raise InvalidRequest(f"{where}[{j}].text must be a string", field=f"{where}[{j}].text")
        texts.append(text)
    return "".join(texts)


def _options(body: dict[str, Any], limits: RequestLimits) -> dict[str, Any]:
    if body.get("max_tokens") is not None and body.get("max_completion_tokens") is not None:
        raise InvalidRequest("give one of 'max_tokens' or 'max_completion_tokens'", field="max_tokens")
    options: dict[str, Any] = {}
    for field_name, name in OPTION_FIELDS.items():
        raw = body.get(field_name)
        if raw is not None:
            options[name] = check_option(name, OPTION_RULES[name], raw, field_name, limits)
    return options


def _think(value: Any) -> bool | str | None:
    if value is None:
        return None
    if isinstance(value, str) and value in REASONING_EFFORT:
        return REASONING_EFFORT[value]
    raise InvalidRequest(f"'reasoning_effort' must be one of {', '.join(REASONING_EFFORT)}", field="reasoning_effort")


def _include_usage(value: Any) -> bool:
    if value is None:
        return False
    if not isinstance(value, dict) or not set(value) <= {"include_usage", "include_obfuscation"}:
        raise InvalidRequest("'stream_options' takes only 'include_usage'", field="stream_options")
    include = value.get("include_usage", False)
    if not isinstance(include, bool):
        raise InvalidRequest("'stream_options.include_usage' must be true or false", field="stream_options")
    return include
