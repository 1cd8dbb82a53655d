"""Incremental decoder for newline-delimited JSON (Ollama's streaming format).

Bytes go in as they arrive from the network; parsed values come out.  The
decoder works on bytes and splits on ``\\n`` before decoding, so a multi-byte
UTF-8 character split across two reads is reassembled for free, and a line is
only ever held once.  Lines end with LF or CRLF; blank lines are skipped.

A line that is not valid JSON does not stop the stream: it is counted in
``skipped`` and kept (truncated) in ``last_skipped`` for the log, and the caller
decides what to report.  A line longer than ``max_line`` is an error
(``LineTooLong``): an upstream that never sends a newline must not make us
buffer without bound.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

_PREVIEW = 200
# The decoder's C scanner: (text, start) -> (value, end); StopIteration if no value starts there.
_scan_once: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


class LineTooLong(ValueError):
    """An NDJSON line exceeded the decoder's limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"upstream line longer than {limit} bytes")
        self.limit = limit


class NdjsonDecoder:
    """Feed it chunks with ``feed``; call ``close`` at the end of the stream."""

    __slots__ = ("_tail", "last_skipped", "max_line", "skipped")

    def __init__(self, max_line: int = 8 * 1024 * 1024) -> None:
        self.max_line = max_line
        self.skipped = 0
        self.last_skipped: bytes | None = None
        self._tail: bytes | bytearray = b""

    def feed(self, chunk: bytes) -> list[Any]:
        """Return the values of every line completed by ``chunk``."""
        end = chunk.rfind(b"\n")
        if end < 0:
            # No line completed: keep the bytes and enforce the limit.
            if len(self._tail) + len(chunk) > self.max_line:
                raise LineTooLong(self.max_line)
            if not self._tail:
                self._tail = chunk
            else:
                # A long line in many reads: grow one buffer, not a copy per read.
                if type(self._tail) is bytes:
                    self._tail = bytearray(self._tail)
                self._tail += chunk
            return []
        head = b"".join((self._tail, chunk[: end + 1])) if self._tail else chunk[: end + 1]
        rest = chunk[end + 1 :]
        if len(rest) > self.max_line:
            raise LineTooLong(self.max_line)
        self._tail = rest
        values: list[Any] = []
        for line in head.split(b"\n"):
            if len(line) > self.max_line:
                raise LineTooLong(self.max_line)
            self._parse(line, values)
        return values

    def close(self) -> list[Any]:
        """End of stream: parse a last line that had no newline, if any."""
        tail, self._tail = self._tail, b""
        values: list[Any] = []
        self._parse(bytes(tail), values)
        return values

    def _parse(self, line: bytes, out: list[Any]) -> None:
        if not line or line.isspace():
            return
        # The common line -- UTF-8, one JSON value from its first byte to its
        # last -- goes straight to the C scanner: ``json.loads`` on bytes
        # spends more time sniffing the encoding and matching whitespace than
        # parsing.  Anything else takes ``json.loads``'s own path, so what is
        # accepted or refused does not change.
        try:
            text = line.decode()
            value, end = _scan_once(text, 0)
            if end == len(text):
                out.append(value)
                return
        except (ValueError, StopIteration):
            pass
        try:
            out.append(json.loads(line))
        except ValueError:  # JSONDecodeError and UnicodeDecodeError alike
            self.skipped += 1
            self.last_skipped = line[:_PREVIEW]
