"""Incremental event-stream parser that follows the WHATWG rules exactly.

Used to read OpenAI-style upstreams (OpenAI, OpenRouter, vLLM, llama.cpp's
server) and in tests to read our own output.  It is fed raw bytes, because a
network read can end anywhere: inside a multi-byte UTF-8 character, inside the
byte-order mark, or between the CR and the LF of a line end.

The rules (HTML standard, "Server-sent events", parsing an event stream):

* the stream is UTF-8, decoded with replacement; one leading BOM is dropped;
* lines end with CRLF, LF or CR, and with nothing else (``str.splitlines``
  would also split on U+2028 and friends, which is wrong here);
* a line starting with ``:`` is a comment; ``name: value`` loses one space
  after the colon; a line without a colon is a field with an empty value;
* ``data`` lines accumulate, joined by LF; a blank line dispatches the event
  unless the data buffer is empty; the event type resets after each dispatch;
* ``id`` sets the last event ID unless it contains NUL (and persists across
  events); ``retry`` is used only if it is all ASCII digits;
* at the end of the stream an event without its blank line is discarded.

Buffers are bounded: a line or an event's data longer than ``max_size``
characters raises ``EventTooLarge``.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """One dispatched event, as a browser's ``MessageEvent`` would see it."""

    type: str
    data: str
    last_event_id: str


class EventTooLarge(ValueError):
    """A line or an event exceeded the parser's size limit."""


class EventStreamDecoder:
    """Feed bytes with ``feed``; call ``close`` at the end of the stream."""

    def __init__(self, max_size: int = 8 * 1024 * 1024) -> None:
        self.max_size = max_size
        self.last_event_id = ""
        self.retry: int | None = None
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
        # An unfinished line, in the pieces it came in (joined once it ends, so a
        # long line read in many small pieces is copied once, not once per piece).
        self._partial: list[str] = []
        self._partial_size = 0
        self._skip_lf = False
        self._data: list[str] = []
        self._data_size = 0
        self._event_type = ""
        self._id_buffer = ""

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Return the events completed by ``chunk``."""
        return self._feed_text(self._decoder.decode(chunk))

    def close(self) -> list[ServerSentEvent]:
        """End of stream: flush the decoder; an unterminated event is dropped."""
        events = self._feed_text(self._decoder.decode(b"", final=True))
        self._partial = []
        self._partial_size = 0
        self._data = []
        self._data_size = 0
        self._event_type = ""
        return events

    def _feed_text(self, text: str) -> list[ServerSentEvent]:
        if not text:
            return []
        if self._skip_lf:
            self._skip_lf = False
            if text[0] == "\n":
                text = text[1:]
        if self._partial:
            if "\n" not in text and "\r" not in text:
                self._keep_partial(text)
                return []
            buffer = "".join(self._partial) + text
            self._partial = []
            self._partial_size = 0
        else:
            buffer = text
        events: list[ServerSentEvent] = []
        pos = 0
        for match in _LINE_END.finditer(buffer):
            self._process_line(buffer[pos : match.start()], events)
            pos = match.end()
        if buffer and pos == len(buffer) and buffer[-1] == "\r":
            # A CR that ends the chunk may be the first half of a CRLF.
            self._skip_lf = True
        if pos < len(buffer):
            self._keep_partial(buffer[pos:] if pos else buffer)
        return events

    def _keep_partial(self, piece: str) -> None:
        self._partial.append(piece)
        self._partial_size += len(piece)
        if self._partial_size > self.max_size:
            raise EventTooLarge(f"event-stream line longer than {self.max_size}")

    def _process_line(self, line: str, events: list[ServerSentEvent]) -> None:
        if not line:
            self._dispatch(events)
            return
        if line[0] == ":":
            return
        name, colon, value = line.partition(":")
        if colon and value[:1] == " ":
            value = value[1:]
        if name == "data":
            self._data.append(value)
            self._data_size += len(value) + 1
            if self._data_size > self.max_size:
                raise EventTooLarge(f"event data longer than {self.max_size}")
        elif name == "event":
            self._event_type = value
        elif name == "id":
            if "\0" not in value:
                self._id_buffer = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry = int(value)

    def _dispatch(self, events: list[ServerSentEvent]) -> None:
        self.last_event_id = self._id_buffer
        if not self._data:
            self._event_type = ""
            return
        data = "\n".join(self._data)
        events.append(ServerSentEvent(self._event_type or "message", data, self.last_event_id))
        self._data = []
        self._data_size = 0
        self._event_type = ""
