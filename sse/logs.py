"""Log lines: JSON for machines, plain sentences for a person at a terminal.

Under systemd, in a container or redirected to a file, every line is a JSON
object (journald, Loki and jq read them): time, level, logger, message, and
the structured fields a caller passed as ``extra={"fields": {...}}`` (or any
other ``extra`` keys).  On a terminal the same records are written as short
lines a person reads in a second -- where to point the browser, which model
answers and why, one line per stream -- as uvicorn and structlog do.
``--log-format`` chooses explicitly; ``auto`` looks at where the lines go.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

_STANDARD = set(vars(logging.LogRecord("x", 0, "x", 0, "x", None, None))) | {"message", "asctime", "taskName"}


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    """The structured fields of a record: ``extra={"fields": {...}}`` and any other ``extra`` keys."""
    out: dict[str, Any] = {}
    fields = getattr(record, "fields", None)
    if isinstance(fields, dict):
        out.update(fields)
    for key, value in vars(record).items():
        if key not in _STANDARD and key != "fields":
            out[key] = value
    return out


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        line.update(fields_of(record))
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


# -- the console

_LONGEST_VALUE = 120


def _listening(f: dict[str, Any]) -> str:
    return f"ready: open {f.get('url')} in your browser (Ctrl-C stops)"


def _starting(f: dict[str, Any]) -> str:
    return f"llm-sse {f.get('version')} starting; it will listen on {f.get('url')}"


def _providers(f: dict[str, Any]) -> str:
    return str(f.get("why") or f"model servers: {', '.join(f.get('providers') or [])}")


def _loading(f: dict[str, Any]) -> str:
    size = f.get("size_mb")
    return f"loading {f.get('model')}" + (f" ({size} MB)" if size else "") + " ..."


def _loaded(f: dict[str, Any]) -> str:
    threads = f.get("threads")
    plural = "" if threads == 1 else "s"
    return (
        f"{f.get('model')} loaded in {_seconds(f.get('load_s'))} "
        f"(context {f.get('context')} tokens, {threads} thread{plural})"
    )


def _stream(f: dict[str, Any]) -> str:
    """One short line per stream: its outcome, size and speed, and who answered."""
    head = f"stream {str(f.get('stream'))[:8]} {f.get('outcome')}"
    duration = _seconds((f.get("duration_ms") or 0) / 1000)
    who = f"{f.get('model')} via {f.get('provider')}" if f.get("provider") else None
    if f.get("outcome") in ("done", "cancelled"):
        parts = [f"{f.get('tokens', 0)} tokens in {duration}"]
        if f.get("ttft_ms") is not None:
            parts.append(f"first after {_seconds(f['ttft_ms'] / 1000)}")
        if who:
            parts.append(who)
        return f"{head}: " + ", ".join(parts)
    text = f"{head} after {duration}"
    if f.get("error"):
        text += f": {_short(f['error'])}"
    return text + (f" ({who})" if who else "")


def _rejected(f: dict[str, Any]) -> str:
    return f"refused {f.get('path')}: {f.get('status')} {f.get('code')} (client {f.get('client')})"


def _shutting_down(f: dict[str, Any]) -> str:
    if not f.get("open_streams"):
        return "shutting down"
    return f"shutting down: {f.get('open_streams')} open streams get {_seconds(f.get('grace_s'))} to finish"


def _cannot_start(f: dict[str, Any]) -> str:
    return f"cannot start: {f.get('why')}"


_SENTENCES: dict[str, Callable[[dict[str, Any]], str]] = {
    "cannot start": _cannot_start,
    "starting": _starting,
    "listening": _listening,
    "providers ready": _providers,
    "loading model": _loading,
    "built-in model loaded": _loaded,
    "stream": _stream,
    "request rejected": _rejected,
    "shutting down": _shutting_down,
}


def _seconds(value: Any) -> str:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return "?"
    return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.0f} s"


def _short(value: Any) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= _LONGEST_VALUE else text[: _LONGEST_VALUE - 1] + "…"


class ConsoleFormatter(logging.Formatter):
    """Plain lines for a person: the time, then what happened, in a sentence.

    Records this module knows (start-up, the model, each stream) get a
    sentence of their own; any other record is its message followed by its
    fields, each value cut to one short line.  Warnings and errors say so.
    """

    def format(self, record: logging.LogRecord) -> str:
        fields = fields_of(record)
        message = record.getMessage()
        sentence = _SENTENCES.get(message) if record.name.startswith("llm_sse") else None
        if sentence is not None:
            text = sentence(fields)
        else:
            text = message
            if fields:
                text += " (" + ", ".join(f"{key}: {_short(value)}" for key, value in fields.items()) + ")"
        if record.levelno >= logging.WARNING:
            text = f"{record.levelname.lower()}: {text}"
        line = f"{time.strftime('%H:%M:%S', time.localtime(record.created))} {text}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _worth_a_line(record: logging.LogRecord) -> bool:
    """On the console, lines that only restate the defaults are left out (the JSON log keeps them)."""
    if record.getMessage() == "limits":
        return fields_of(record).get("backend") != "memory"
    return True


def wants_console(log_format: str, stream: TextIO) -> bool:
    """Console lines for ``console``; for ``auto``, when the lines go to a terminal."""
    if log_format == "auto":
        isatty = getattr(stream, "isatty", None)
        return bool(isatty and isatty())
    return log_format == "console"


def configure(level: str, log_format: str = "json", stream: TextIO | None = None) -> bool:
    """Send every log record to stderr (journald keeps it), as JSON or console lines.

    Returns whether the console format was chosen.
    """
    stream = sys.stderr if stream is None else stream
    console = wants_console(log_format.lower(), stream)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(ConsoleFormatter() if console else JsonFormatter())
    if console:
        handler.addFilter(_worth_a_line)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's access log would be a second line per stream; ours says more.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    return console
