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
    writes them in one frame (see ``coalesce``); the later pieces of a token
    too long for one frame count 0.
    """

    text: str
    count: int = 1


@dataclass(frozen=True, slots=True)
class Thinking:
    """A piece of the model's reasoning, shown apart from the answer."""

    text: str
    count: int = 1


@dataclass(frozen=True, slots=True)
class ToolCall:
    """The model asks the client to run a tool; llm-sse never runs it.

    Complete when yielded: providers reassemble OpenAI's streamed argument
    fragments by ``index`` and dump Ollama's argument objects to JSON, so
    every encoder gets one call with ``arguments`` exactly as a JSON string
    (as the model produced it, not re-parsed).  ``id`` is the upstream's,
    or one made up when the upstream gives none, so the client can answer
    the call by id in its next request.
    """

    id: str
    name: str
    arguments: str
    index: int = 0


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


Event = Token | Thinking | ToolCall | Done | StreamError | Skipped


# The most text one merged event carries, in characters.  A read can hold
# hundreds of kilobytes of tokens (a fast upstream ahead of a slow client); as
# one frame that is hundreds of kilobytes held, in several copies, by every
# client that stops reading.  Capped, a frame is at most 4 KiB of ASCII (24 KiB
# if every character needed a six-byte JSON escape), whatever the token sizes.
MAX_MERGED_CHARS = 4096


def coalesce(events: list[Event], limit: int = MAX_MERGED_CHARS) -> list[Event]:
    """Merge runs of adjacent ``Token`` (or ``Thinking``) events into events of at most ``limit`` characters.

    Called on the events decoded from one upstream read: a read that carried
    five tokens becomes one frame and one write to the client instead of five,
    which is most of what a relay can save per token.  Each merged event's
    texts are joined once: a busy upstream's read can carry a thousand tokens,
    and adding them one by one would copy the growing text a thousand times.

    No event's text exceeds ``limit``: a run is cut where the next token would
    pass it, and a single longer token is split (its ``count`` stays on the
    first piece, so the counts still add up).
    """
    if len(events) < 2 and not (events and _too_long(events[0], limit)):
        return events
    merged: list[Event] = []
    run: list[Token | Thinking] = []
    size = 0
    for event in events:
        if isinstance(event, Token | Thinking):
            length = len(event.text)
            if run and (type(run[0]) is not type(event) or size + length > limit):
                merged.append(_merge(run))
                run, size = [], 0
            if length > limit:
                merged.extend(_split(event, limit))
                continue
            run.append(event)
            size += length
            continue
        if run:
            merged.append(_merge(run))
            run, size = [], 0
        merged.append(event)
    if run:
        merged.append(_merge(run))
    return merged


def _too_long(event: Event, limit: int) -> bool:
    return isinstance(event, Token | Thinking) and len(event.text) > limit


def _split(event: Token | Thinking, limit: int) -> list[Event]:
    kind = type(event)
    text = event.text
    return [kind(text[start : start + limit], event.count if start == 0 else 0) for start in range(0, len(text), limit)]


def _merge(run: list[Token | Thinking]) -> Event:
    if len(run) == 1:
        return run[0]
    text = "".join([event.text for event in run])
    count = sum([event.count for event in run])
    return Token(text, count) if type(run[0]) is Token else Thinking(text, count)
