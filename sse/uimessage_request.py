"""The request the Vercel AI SDK's ``useChat`` sends, validated into a ``ChatRequest``.

``DefaultChatTransport`` posts ``{id, messages, trigger, messageId?, ...body}``
where ``messages`` are UI messages: ``{id, role, parts, metadata?}``.  This
module turns them into the conversation a model reads, as the SDK's own
``convertToModelMessages`` does for the parts llm-sse relays:

* ``text`` parts are the message's text (joined);
* an assistant message is split at each ``step-start`` into the turns the
  model made: its text, the tool calls it asked for (``tool-NAME`` and
  ``dynamic-tool`` parts), then one ``tool`` result per call that has an
  output (``output-available``, or ``output-error`` whose ``errorText`` is
  the result); calls still waiting for their output are left out, since a
  model server refuses a call without its result;
* ``reasoning``, ``step-start``, ``source-*`` and ``data-*`` parts carry
  nothing the model reads; ``file`` parts are refused (text only).

From ``body`` (``useChat``'s ``body`` option) the endpoint takes ``model``,
``think``, ``options``, ``tools`` and ``tool_choice`` as ``/api/chat`` does;
any other field is a 400 naming it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from .chat import (
    ChatRequest,
    RequestLimits,
    check_input_size,
    parse_messages,
    parse_model,
    parse_options,
    parse_think,
    parse_tool_choice,
    parse_tools,
)
from .errors import InvalidRequest

TRIGGERS = ("submit-message", "regenerate-message")
FIELDS = ("id", "messages", "trigger", "messageId", "model", "think", "options", "tools", "tool_choice")
ROLES = ("system", "user", "assistant")
# Chat ids become part of a URL path (GET {api}/{id}/stream): kept to what useChat makes.
CHAT_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
_SILENT_PARTS = ("reasoning", "step-start", "source-url", "source-document")
_RESULT_STATES = ("output-available", "output-error")

DEFAULT_LIMITS = RequestLimits()


@dataclass(frozen=True, slots=True)
class UIChatRequest:
    """A ``useChat`` request: the chat, its id, and the assistant message an answer continues."""

    chat: ChatRequest
    chat_id: str
    message_id: str | None  # the last message's id when it is the assistant's (a tool result came back)


def parse_ui_request(body: Any, limits: RequestLimits = DEFAULT_LIMITS) -> UIChatRequest:
    """Validate a decoded JSON body of a ``useChat`` request."""
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object", field="body")
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise InvalidRequest(
            f"unknown field {unknown[0]!r}; expected some of: {', '.join(FIELDS)}",
            field=unknown[0],
        )
    chat_id = body.get("id")
    if not isinstance(chat_id, str) or not CHAT_ID.fullmatch(chat_id):
        raise InvalidRequest("'id' (the chat's id) must be 1 to 128 letters, digits, '-' or '_'", field="id")
    trigger = body.get("trigger", "submit-message")
    if trigger not in TRIGGERS:
        raise InvalidRequest(f"'trigger' must be one of {', '.join(TRIGGERS)}", field="trigger")
    message_id = body.get("messageId")
    if message_id is not None and not isinstance(message_id, str):
        raise InvalidRequest("'messageId' must be a string", field="messageId")
    ui_messages = body.get("messages")
    if not isinstance(ui_messages, list) or not ui_messages:
        raise InvalidRequest("'messages' must be a non-empty list of UI messages", field="messages")
    if len(ui_messages) > limits.max_messages:
        raise InvalidRequest(
            f"'messages' has {len(ui_messages)} entries; the limit is {limits.max_messages}", field="messages"
        )
    model_messages: list[dict[str, Any]] = []
    for i, message in enumerate(ui_messages):
        model_messages.extend(_model_messages(message, f"messages[{i}]"))
    last = ui_messages[-1]
    continues = last.get("id") if last.get("role") == "assistant" and isinstance(last.get("id"), str) else None
    tools = parse_tools(body.get("tools"), limits)
    chat = ChatRequest(
        messages=parse_messages(model_messages, limits),
        model=parse_model(body.get("model"), limits),
        options=parse_options(body.get("options"), limits),
        think=parse_think(body.get("think")),
        tools=tools,
        tool_choice=parse_tool_choice(body["tool_choice"], tools) if body.get("tool_choice") is not None else None,
    )
    check_input_size(chat, limits)
    return UIChatRequest(chat, chat_id, continues)


def _model_messages(message: Any, where: str) -> list[dict[str, Any]]:
    """One UI message as the turns a model reads (``/api/chat``'s message shape)."""
    if not isinstance(message, dict):
        raise InvalidRequest(f"{where} must be a UI message: {{id, role, parts}}", field=where)
    role = message.get("role")
    if role not in ROLES:
        raise InvalidRequest(f"{where}.role must be one of {', '.join(ROLES)}", field=f"{where}.role")
    parts = message.get("parts")
    if not isinstance(parts, list):
        raise InvalidRequest(f"{where}.parts must be a list", field=f"{where}.parts")
    if role != "assistant":
        return [{"role": role, "content": "".join(_texts(parts, where, role))}]
    turns: list[dict[str, Any]] = []
    step: list[tuple[int, dict[str, Any]]] = []
    for j, part in enumerate(parts):
        if isinstance(part, dict) and part.get("type") == "step-start":
            turns += _assistant_step(step, where)
            step = []
        else:
            step.append((j, part))
    return turns + _assistant_step(step, where)


def _texts(parts: list[Any], where: str, role: str) -> list[str]:
    texts = []
    for j, part in enumerate(parts):
        at = f"{where}.parts[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if not isinstance(kind, str):
            raise InvalidRequest(f"{at} must be an object with a 'type'", field=at)
        if kind == "text":
            text = part.get("text")
            if not isinstance(text, str):
                raise InvalidRequest(f"{at}.text must be a string", field=f"{at}.text")
            texts.append(text)
        elif kind == "file":
            raise InvalidRequest(f"{at} is a file; only text is supported", field=at)
        elif role != "assistant" and (kind.startswith("tool-") or kind == "dynamic-tool"):
            raise InvalidRequest(f"{at}: tool parts belong to assistant messages", field=at)
    return texts


def _assistant_step(step: list[tuple[int, Any]], where: str) -> list[dict[str, Any]]:
    """One step of an assistant message: its turn, then its tools' results."""
    texts = _texts([part for _, part in step], where, "assistant")
    calls: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for j, part in step:
        kind = part["type"]
        if not (kind.startswith("tool-") or kind == "dynamic-tool"):
            continue
        at = f"{where}.parts[{j}]"
        name = part.get("toolName") if kind == "dynamic-tool" else kind[len("tool-") :]
        call_id = part.get("toolCallId")
        if not isinstance(call_id, str) or not call_id:
            raise InvalidRequest(f"{at}.toolCallId must be a non-empty string", field=f"{at}.toolCallId")
        if part.get("state") not in _RESULT_STATES:
            continue  # still waiting for its output (or for approval): not sent to the model
        calls.append({"id": call_id, "function": {"name": name, "arguments": part.get("input") or {}}})
        if part["state"] == "output-available":
            output = part.get("output")
            content = output if isinstance(output, str) else json.dumps(output, ensure_ascii=False)
        else:
            error = part.get("errorText")
            content = error if isinstance(error, str) else "the tool failed"
        results.append({"role": "tool", "content": content, "tool_call_id": call_id, "tool_name": name})
    text = "".join(texts)
    if not text and not calls:
        return []
    turn: dict[str, Any] = {"role": "assistant", "content": text}
    if calls:
        turn["tool_calls"] = calls
    return [turn, *results]
