"""The typed events a provider yields while it streams an answer.

Every provider, whatever its wire format, turns the upstream's bytes into these
few immutable values; the relay turns them into frames.  Keeping the set small
is what lets one relay serve Ollama, OpenAI-compatible servers and the built-in
model alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Token:
    """A piece of the answer's text.

    ``count`` is how many upstream tokens the text stands for: a provider merges
    the tokens that arrived in one upstream read into one event, so the relay
    writes them in one frame (see ``coalesce``).
    """

    text: str
    count: int = 1


@dataclass(frozen=True, slots=True)
class Thinking:
    """A piece of the model's reasoning, shown apart from the answer."""

    text: str
    count: int = 1


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts as the upstream reports them (``None`` when it does not)."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class Done:
    """The upstream finished normally.

    ``generation_s`` is the upstream's own measure of decode time, when it gives
    one (Ollama's ``eval_duration``); the relay prefers it to its own clock for
    tokens per second because it excludes network and queueing time.
    """

    finish_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    generation_s: float | None = None


@dataclass(frozen=True, slots=True)
class StreamError:
    """The upstream reported a failure in-band, after it had started streaming."""

    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Skipped:
    """The provider skipped upstream lines it could not parse.

    Not shown to the client as a frame: the relay counts it, logs it, and
    reports the total in the ``done`` frame, so nothing is lost silently.
    """

    count: int
    sample: str


Event = Token | Thinking | Done | StreamError | Skipped


def coalesce(events: list[Event]) -> list[Event]:
    """Merge runs of adjacent ``Token`` (or ``Thinking``) events into one.

    Called on the events decoded from one upstream read: a read that carried
    five tokens becomes one frame and one write to the client instead of five,
    which is most of what a relay can save per token.
    """
    if len(events) < 2:
        return events
    merged: list[Event] = []
    for event in events:
        last = merged[-1] if merged else None
        if type(event) is Token and type(last) is Token:
            merged[-1] = Token(last.text + event.text, last.count + event.count)
        elif type(event) is Thinking and type(last) is Thinking:
            merged[-1] = Thinking(last.text + event.text, last.count + event.count)
        else:
            merged.append(event)
    return merged
