"""The API's OpenAPI 3.1 description, built from the settings in force.

Built, not written by hand, so the limits it states are the ones this
instance enforces: ``maxLength`` of a prompt is ``LLM_SSE_MAX_PROMPT_CHARS``,
``num_predict``'s maximum is ``LLM_SSE_MAX_PREDICT``, the model is an enum
when ``LLM_SSE_MODELS_ALLOWED`` is set, and the API needs a bearer key only
when keys are configured.  The request schema says exactly what
``sse.chat.parse_chat_request`` accepts, except for what JSON Schema cannot
say (the whole conversation's size; lone surrogates), which its
descriptions state; tests/test_fuzz.py holds the server to this document.

The event stream is ``text/event-stream``.  OpenAPI 3.1 has no keyword for
the items of a stream, so its schema describes one event (the convention
before 3.2's ``itemSchema``, which schemathesis follows): the event's name
and its ``data`` as JSON of the matching schema.
"""

from __future__ import annotations

from typing import Any

from .chat import (
    MAX_STOP_LENGTH,
    MAX_STOP_SEQUENCES,
    MAX_TOOL_CALLS,
    MAX_TOOLS,
    OPTION_ALIASES,
    OPTION_RULES,
    ROLES,
    THINK_LEVELS,
    TOOL_CHOICES,
)
from .cors import ALLOWED_HEADERS, MAX_AGE_SECONDS
from .limits import BUSY_RETRY_AFTER
from .settings import Settings

JSON = "application/json"
# Python's \S (str.strip's notion of blank) and no control characters.
TOOL_NAME_PATTERN = "^[A-Za-z0-9_.:-]{1,128}$"
NOT_BLANK = r"\S"
MODEL_PATTERN = r"^(?=[\s\S]*\S)[^\x00-\x1f]*$"

ERROR_CODES: dict[int, tuple[str, list[str]]] = {
    400: (
        "The body or a field is invalid (`field` names it), the model is not offered, the detector rejected "
        "the prompt, or the model server refused the request as malformed.",
        [
            "invalid_json",
            "invalid_body",
            "invalid_request",
            "model_not_allowed",
            "prompt_rejected",
            "upstream_rejected",
        ],
    ),
    401: ("An API key is required and none, or a wrong one, was sent.", ["unauthorized"]),
    403: ("A CORS preflight from an origin that is not allowed.", ["origin_not_allowed"]),
    404: ("The model server does not have the model.", ["model_not_found"]),
    405: ("The method is not allowed on this path.", ["method_not_allowed"]),
    408: ("The body did not arrive within LLM_SSE_BODY_TIMEOUT.", ["request_timeout"]),
    413: (
        "The body, a prompt, a message, the number of messages or the whole conversation is too large.",
        ["body_too_large", "input_too_long"],
    ),
    415: (
        "The body was not sent as application/json, or was compressed (Content-Encoding).",
        ["unsupported_media_type"],
    ),
    417: ("An Expect header other than 100-continue.", ["expectation_failed"]),
    429: (
        "This client is over its request rate or its number of open streams, or the model server is rate "
        "limiting. `Retry-After` (and `retry_after` in the body) says when to try again.",
        ["rate_limited", "too_many_streams", "upstream_rate_limited"],
    ),
    500: ("A bug: the server log has details; the body never does.", ["internal_error"]),
    502: (
        "The model server is unreachable, failed, refused this service's credentials, or hung up.",
        ["upstream_unavailable", "upstream_error", "upstream_auth", "upstream_disconnected"],
    ),
    503: (
        "The server is at its limit of open streams, is restarting, or the model server's queue is full. "
        "`Retry-After` says when to try again.",
        ["server_busy", "shutting_down", "shutdown", "upstream_busy"],
    ),
    504: ("The model server did not connect, or sent nothing, in time.", ["upstream_timeout"]),
}
RETRY_STATUSES = (429, 503)
CHAT_STATUSES = (400, 401, 404, 408, 413, 415, 417, 429, 500, 502, 503, 504)


def build(settings: Settings, *, keys_required: bool, version: str = "0") -> dict[str, Any]:
    """The OpenAPI document for ``settings``."""
    chat_responses: dict[str, Any] = {"200": _event_stream_response()}
    chat_responses.update(_errors(s for s in CHAT_STATUSES if keys_required or s != 401))
    models_responses: dict[str, Any] = {
        "200": {"description": "The models of every provider.", "content": {JSON: {"schema": _ref("Models")}}}
    }
    models_responses.update(_errors(s for s in (401, 500, 502) if keys_required or s != 401))
    security: list[dict[str, list[str]]] = [{"bearer": []}] if keys_required else []
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "llm-sse",
            "version": version,
            "description": (
                "Streams a model's answer to the browser as Server-Sent Events. Errors before the stream "
                'starts are JSON `{"error": {"code", "message", "field"?, "retry_after"?}}` with their '
                "status; after it starts, an `event: error` frame with the same code."
            ),
        },
        "paths": {
            "/api/chat": {
                "post": {
                    "operationId": "chat",
                    "summary": "Answer a chat as an event stream",
                    "security": security,
                    "parameters": [_origin_parameter()],
                    "requestBody": {"required": True, "content": {JSON: {"schema": _ref("ChatRequest")}}},
                    "responses": chat_responses,
                },
                "options": _preflight("chat", ["POST", "OPTIONS"]),
            },
            "/api/models": {
                "get": {
                    "operationId": "models",
                    "summary": "The models clients may ask for",
                    "security": security,
                    "parameters": [_origin_parameter()],
                    "responses": models_responses,
                },
                "options": _preflight("models", ["GET", "OPTIONS"]),
            },
            "/healthz": {
                "get": {
                    "operationId": "healthz",
                    "summary": "Liveness: the process answers",
                    "responses": {"200": {"description": "Alive.", "content": {JSON: {"schema": _ref("Health")}}}},
                }
            },
            "/readyz": {
                "get": {
                    "operationId": "readyz",
                    "summary": "Readiness: a provider answers and the service is not shutting down",
                    "responses": {
                        "200": {"description": "Ready.", "content": {JSON: {"schema": _ref("Readiness")}}},
                        "503": {"description": "Not ready.", "content": {JSON: {"schema": _ref("Readiness")}}},
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "responses": {"200": {"description": "The OpenAPI document.", "content": {JSON: {}}}},
                }
            },
        },
        "components": {"schemas": _schemas(settings), "headers": _headers()},
    }
    if keys_required:
        document["components"]["securitySchemes"] = {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "An API key from LLM_SSE_API_KEYS or LLM_SSE_API_KEYS_FILE.",
            }
        }
    return document


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _origin_parameter() -> dict[str, Any]:
    return {
        "name": "Origin",
        "in": "header",
        "required": False,
        "description": "Sent by browsers; an origin in LLM_SSE_CORS_ORIGINS gets CORS headers back.",
        "schema": {"type": "string"},
    }


def _preflight(name: str, methods: list[str]) -> dict[str, Any]:
    return {
        "operationId": f"{name}_preflight",
        "summary": "CORS preflight",
        "parameters": [
            {**_origin_parameter(), "description": "The calling page's origin; without it, a plain Allow answer."},
            {"name": "Access-Control-Request-Method", "in": "header", "required": False, "schema": {"type": "string"}},
        ],
        "responses": {
            "204": {
                "description": (
                    f"Allowed (or no Origin): Access-Control-Allow-Methods {', '.join(methods)}, "
                    f"Access-Control-Allow-Headers {ALLOWED_HEADERS}, Access-Control-Max-Age {MAX_AGE_SECONDS}."
                )
            },
            **_errors([403]),
        },
    }


def _errors(statuses: Any) -> dict[str, Any]:
    responses = {}
    for status in statuses:
        description, codes = ERROR_CODES[status]
        response: dict[str, Any] = {
            "description": f"{description} Codes: {', '.join(codes)}.",
            "content": {JSON: {"schema": _ref("Error")}},
        }
        if status in RETRY_STATUSES:
            response["headers"] = {"Retry-After": {"$ref": "#/components/headers/RetryAfter"}}
        if status == 401:
            response["headers"] = {"WWW-Authenticate": {"$ref": "#/components/headers/WWWAuthenticate"}}
        responses[str(status)] = response
    return responses


def _headers() -> dict[str, Any]:
    return {
        "RetryAfter": {
            "description": (
                f"Whole seconds to wait before trying again (at least 1; {BUSY_RETRY_AFTER:g} when waiting "
                "for a stream to end). The body's error.retry_after says the same."
            ),
            "required": False,
            "schema": {"type": "string", "pattern": "^[0-9]+$"},
        },
        "WWWAuthenticate": {"required": True, "schema": {"type": "string", "pattern": "^Bearer"}},
    }


def _event_stream_response() -> dict[str, Any]:
    return {
        "description": (
            "The answer as Server-Sent Events, in order: one `meta`, `thinking`, `token` and `tool_call` frames as "
            "they arrive, then exactly one terminal frame: `done` or `error`. Each frame is `event:`, one `data:` "
            "line of compact JSON, and `id:` (its sequence number); `: ping` comments keep an idle connection "
            "open. As is usual before OpenAPI 3.2's `itemSchema`, the schema describes one event."
        ),
        "headers": {
            "Cache-Control": {"schema": {"type": "string", "const": "no-cache"}},
            "X-Accel-Buffering": {"schema": {"type": "string", "const": "no"}},
        },
        "content": {"text/event-stream": {"schema": _ref("StreamEvent")}},
    }


def _event(name: str, data_schema: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["event", "data", "id"],
        "properties": {
            "event": {"const": name},
            "data": {"type": "string", "contentMediaType": JSON, "contentSchema": _ref(data_schema)},
            "id": {"type": "string", "pattern": "^[0-9]+$"},
        },
    }


def _schemas(settings: Settings) -> dict[str, Any]:
    limits = settings.request_limits
    text = {"type": "string", "minLength": 1, "maxLength": limits.max_prompt_chars, "pattern": NOT_BLANK}
    model: dict[str, Any] = {"type": ["string", "null"], "minLength": 1, "maxLength": 200, "pattern": MODEL_PATTERN}
    allowed = settings.allowed_models
    if allowed:
        model = {"enum": [*allowed, None]}
    model["description"] = "The model; absent or null: the server's default."
    return {
        "ChatRequest": {
            "type": "object",
            "description": (
                "Exactly one of `prompt` or `messages`. The whole conversation may hold at most "
                f"{limits.max_input_chars} characters (413 input_too_long); strings must be valid Unicode "
                "(no lone surrogates)."
            ),
            "additionalProperties": False,
            "properties": {
                "prompt": {**text, "type": ["string", "null"], "description": "A bare prompt."},
                "messages": {
                    "type": ["array", "null"],
                    "minItems": 1,
                    "maxItems": limits.max_messages,
                    "items": _ref("Message"),
                    "contains": {
                        "anyOf": [
                            {"type": "object", "properties": {"content": {"pattern": NOT_BLANK}}},
                            {"type": "object", "required": ["tool_calls"]},
                        ]
                    },
                    "description": (
                        "A conversation; at least one message must have non-blank content (or tool calls)."
                    ),
                },
                "tools": {
                    "type": ["array", "null"],
                    "maxItems": MAX_TOOLS,
                    "items": _ref("Tool"),
                    "description": "Functions the model may ask the client to call; llm-sse never calls them.",
                },
                "tool_choice": {
                    "description": "Whether and which tool the model must call (OpenAI's shape; Ollama: `none` only).",
                    "oneOf": [{"enum": [*TOOL_CHOICES, None]}, _ref("NamedToolChoice")],
                },
                "model": model,
                "options": {"oneOf": [_ref("Options"), {"type": "null"}]},
                "think": {
                    "description": "Reasoning for models that support it.",
                    "oneOf": [{"type": ["boolean", "null"]}, {"enum": list(THINK_LEVELS)}],
                },
            },
            "oneOf": [
                {"required": ["prompt"], "properties": {"prompt": {"type": "string"}, "messages": {"type": "null"}}},
                {"required": ["messages"], "properties": {"messages": {"type": "array"}, "prompt": {"type": "null"}}},
            ],
        },
        "Message": {
            "type": "object",
            "additionalProperties": False,
            "required": ["role"],
            "description": (
                "`content` may be null or absent only on an assistant message; `tool_calls` only on an "
                "assistant message; `tool_call_id`/`tool_name` only on a `tool` result, which answers a call "
                "of the assistant message before it."
            ),
            "properties": {
                "role": {"enum": list(ROLES)},
                "content": {"type": ["string", "null"], "maxLength": limits.max_prompt_chars},
                "tool_calls": {"type": ["array", "null"], "maxItems": MAX_TOOL_CALLS, "items": _ref("ToolCallIn")},
                "tool_call_id": {"type": ["string", "null"], "minLength": 1, "maxLength": 200},
                "tool_name": {"type": ["string", "null"], "minLength": 1, "maxLength": 200},
            },
        },
        "ToolCallIn": {
            "type": "object",
            "additionalProperties": False,
            "required": ["function"],
            "properties": {
                "id": {"type": ["string", "null"], "minLength": 1, "maxLength": 200},
                "type": {"const": "function"},
                "index": {},
                "function": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string", "pattern": TOOL_NAME_PATTERN},
                        "arguments": {
                            "type": ["string", "object", "null"],
                            "description": "A JSON object, or a string holding one.",
                        },
                    },
                },
            },
        },
        "Tool": {
            "type": "object",
            "additionalProperties": False,
            "required": ["type", "function"],
            "properties": {
                "type": {"const": "function"},
                "function": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string", "pattern": TOOL_NAME_PATTERN},
                        "description": {"type": ["string", "null"]},
                        "parameters": {"type": ["object", "null"], "description": "A JSON Schema."},
                        "strict": {},
                    },
                },
            },
        },
        "NamedToolChoice": {
            "type": "object",
            "required": ["type", "function"],
            "properties": {
                "type": {"const": "function"},
                "function": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}},
            },
        },
        "Options": _options_schema(settings),
        "Error": {
            "type": "object",
            "required": ["error"],
            "additionalProperties": False,
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "additionalProperties": False,
                    "properties": {
                        "code": {"type": "string", "description": "Stable; see each status for its codes."},
                        "message": {"type": "string", "description": "For people; may change."},
                        "field": {"type": "string", "description": "The request field at fault, if one is."},
                        "retry_after": {
                            "type": "integer",
                            "minimum": 1,
                            "description": "Seconds to wait before trying again (429 and 503).",
                        },
                    },
                }
            },
        },
        "StreamEvent": {
            "description": "One frame of the event stream: its name, its JSON data, its sequence number.",
            "oneOf": [
                _event("meta", "MetaEvent"),
                _event("thinking", "TextEvent"),
                _event("token", "TextEvent"),
                _event("tool_call", "ToolCallEvent"),
                _event("done", "DoneEvent"),
                _event("error", "ErrorEvent"),
            ],
        },
        "MetaEvent": {
            "type": "object",
            "required": ["id", "model", "provider"],
            "properties": {
                "id": {"type": "string"},
                "model": {"type": "string"},
                "provider": {"type": "string"},
                "flags": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "Patterns the prompt-injection detector found (LLM_SSE_INJECTION=flag).",
                },
                "findings": {
                    "type": "array",
                    "description": (
                        "Where each pattern is: the request field and the [start, end) of the match in that "
                        "field's text, counted in Unicode code points (docs/injection.md)."
                    ),
                    "items": {
                        "type": "object",
                        "required": ["flag", "field", "start", "end"],
                        "properties": {
                            "flag": {"type": "string"},
                            "field": {"type": "string"},
                            "start": {"type": "integer", "minimum": 0},
                            "end": {"type": "integer", "minimum": 0},
                        },
                    },
                },
            },
        },
        "TextEvent": {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}},
        "ToolCallEvent": {
            "type": "object",
            "description": (
                "The model asks the client to call a tool; the client runs it and sends the result back as a "
                "`tool` message (with `tool_call_id`) in its next request. The `done` frame's `finish_reason` "
                "is then `tool_calls`."
            ),
            "required": ["id", "name", "arguments"],
            "properties": {
                "id": {"type": "string"},
                "name": {"type": "string"},
                "arguments": {"type": "string", "description": "A JSON object's text, as the model produced it."},
            },
        },
        "DoneEvent": {
            "type": "object",
            "required": ["finish_reason", "usage", "timing", "skipped_lines"],
            "properties": {
                "finish_reason": {"type": ["string", "null"]},
                "usage": {"type": "object"},
                "timing": {"type": "object"},
                "skipped_lines": {"type": "integer"},
            },
        },
        "ErrorEvent": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        },
        "Models": {
            "type": "object",
            "required": ["models", "default", "errors"],
            "properties": {
                "models": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "provider"],
                        "properties": {"name": {"type": "string"}, "provider": {"type": "string"}},
                    },
                },
                "default": {"type": ["string", "null"]},
                "errors": {"type": "array", "items": {"type": "object"}},
            },
        },
        "Health": {"type": "object", "required": ["status"], "properties": {"status": {"const": "ok"}}},
        "Readiness": {
            "type": "object",
            "required": ["status", "providers"],
            "properties": {
                "status": {"enum": ["ready", "not_ready"]},
                "providers": {"type": "array", "items": {"type": "object"}},
                "limits": {"type": "string", "description": "Where the rate and stream counts live."},
                "detail": {"type": "string"},
            },
        },
    }


def _options_schema(settings: Settings) -> dict[str, Any]:
    limits = settings.request_limits
    properties: dict[str, Any] = {}
    for name, rule in OPTION_RULES.items():
        if name == "stop":
            one = {"type": "string", "minLength": 1, "maxLength": MAX_STOP_LENGTH}
            properties[name] = {
                "oneOf": [one, {"type": "array", "minItems": 1, "maxItems": MAX_STOP_SEQUENCES, "items": one}]
            }
            continue
        high = {"num_predict": limits.max_predict, "num_ctx": limits.max_ctx}.get(name, rule.high)
        schema: dict[str, Any] = {"type": "integer" if rule.kind is int else "number"}
        if rule.low is not None:
            schema["minimum"] = rule.low
        if high is not None:
            schema["maximum"] = high
        properties[name] = schema
    for alias, name in OPTION_ALIASES.items():
        properties[alias] = {**properties[name], "description": f"Another name for {name}."}
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
        "not": {"anyOf": [{"required": [alias, name]} for alias, name in OPTION_ALIASES.items()]},
        "description": "Generation options, Ollama's names; each within its range.",
    }
