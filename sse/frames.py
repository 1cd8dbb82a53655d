"""Encode Server-Sent Events frames.

A frame is ``event:`` then ``data:`` then ``id:`` lines and a blank line.  The
order is deliberate: the naive readers people write first (find an ``event:``
line, take the next ``data:`` line) parse every frame we send, and a WHATWG
parser does not care about the order of fields.

``data`` is always one line of compact JSON.  ``json.dumps`` escapes CR and LF
inside strings, and we also escape U+0085, U+2028 and U+2029: they are not line
ends for an event stream, but Python's ``str.splitlines()`` and some JavaScript
line readers break on them, and model output does contain them.
"""

from __future__ import annotations

import json
from typing import Any

_encode_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
# What that encoder does with a ``str`` (the C function when available).
_quote = json.encoder.encode_basestring

# Characters a JSON encoder with ensure_ascii=False leaves raw but which some
# line readers treat as line breaks.
_LINE_BREAKERS = {"\u0085": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}


class FrameError(ValueError):
    """A frame could not be encoded safely (e.g. a line break in an event name)."""


def dumps(data: Any) -> str:
    """Compact, single-line JSON that no common line reader splits."""
    text = _encode_json(data)
    if "\u0085" in text or "\u2028" in text or "\u2029" in text:
        for char, escape in _LINE_BREAKERS.items():
            text = text.replace(char, escape)
    return text


def _check_field(name: str, value: str) -> None:
    if "\r" in value or "\n" in value:
        raise FrameError(f"SSE {name} must not contain CR or LF: {value!r}")


def encode(
    event: str | None = None,
    data: Any = None,
    *,
    id: int | str | None = None,
    retry: int | None = None,
) -> bytes:
    """Encode one frame.

    ``data`` is serialised as JSON unless it is already a ``str`` of JSON text
    (callers that pass through JSON they produced themselves skip a re-encode);
    such a string must not contain CR or LF.  ``id`` must not contain a NUL
    either: a browser would ignore it.
    """
    parts: list[str] = []
    if event is not None:
        _check_field("event name", event)
        parts.append(f"event: {event}\n")
    if data is not None:
        text = data if isinstance(data, str) else dumps(data)
        _check_field("data", text)
        parts.append(f"data: {text}\n")
    if id is not None:
        sid = str(id)
        _check_field("id", sid)
        if "\0" in sid:
            raise FrameError("SSE id must not contain NUL")
        parts.append(f"id: {sid}\n")
    if retry is not None:
        if retry < 0:
            raise FrameError("SSE retry must be a non-negative integer")
        parts.append(f"retry: {int(retry)}\n")
    if not parts:
        raise FrameError("an SSE frame needs at least one field")
    parts.append("\n")
    return "".join(parts).encode()


def text_frame(event: str, text: str, seq: int) -> bytes:
    """The hot path: a ``token`` or ``thinking`` frame, ``{"text": ...}``.

    Equivalent to ``encode(event, {"text": text}, id=seq)`` (a test pins that)
    with the generic checks skipped: ``event`` is one of our constants and the
    JSON encoder never emits a raw line break.  The string goes straight to
    the C string encoder, and the scan for U+0085/U+2028/U+2029 is skipped for
    ASCII text (``isascii`` reads a flag; most tokens are ASCII).
    """
    quoted = _quote(text)
    if not text.isascii():
        for char, escape in _LINE_BREAKERS.items():
            if char in quoted:
                quoted = quoted.replace(char, escape)
    return f'event: {event}\ndata: {{"text":{quoted}}}\nid: {seq}\n\n'.encode()


def comment(text: str = "") -> bytes:
    """A comment line (``: text``), ignored by readers; used as a heartbeat."""
    _check_field("comment", text)
    return f": {text}\n\n".encode() if text else b":\n\n"
