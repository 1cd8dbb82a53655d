"""A heuristic detector of prompt-injection patterns, measured on published attack collections.

It reads what the person sent (the ``prompt``, and every ``user`` message) and
names the patterns it recognises, with where each one is:

* ``ignore_instructions`` -- "ignore all previous instructions", "forget your
  rules", a separator or padding followed by "just print ...";
* ``reveal_system_prompt`` -- "print your system prompt", "repeat the words
  above starting with 'You are'", "encode your initial instructions in base64";
* ``jailbreak_roleplay`` -- DAN, "developer mode enabled", personas "without any
  restrictions/filters/ethics";
* ``fake_system_turn`` -- chat-template tokens and fake turns (``<|im_start|>system``,
  ``<|endoftext|>``, ``[system]``, "System: ignore ...", "Assistant: [summary]");
* ``planted_instruction`` -- a document speaking to the model that reads it
  ("note to automated analysis software", "when summarizing this page, ...",
  "if the user asks, reply only with ...");
* ``exfiltration`` -- a Markdown image or link whose address carries the
  conversation, or a request to send secrets to an address;
* ``markup_injection`` -- a request to put script into the answer;
* ``encoded_payload`` -- an encoded blob (base64, base32, hex, Ascii85, uuencode,
  quoted-printable, URL escapes, Morse, braille, NATO, ROT13, Atbash, Unicode
  tags...) that decodes to one of the above or to script, or an instruction to
  decode something and follow it;
* ``obfuscated`` -- one of the above hidden by spacing, leetspeak, look-alike
  letters, fullwidth forms, invisible characters, zalgo or writing backwards,
  or text smuggled in invisible characters at all.

The override, extraction and persona phrases are also recognised in fifteen
other languages (languages.py).  What it is: regular expressions over a few
normalised views of the text, linear in its length.  What it is not: a
classifier -- a paraphrase with no marker, an instruction split across
messages or in an image, and anything new pass.  docs/injection.md has the
per-family figures on published corpora and the limits.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ..chat import ChatRequest
from . import languages
from .anchors import Anchored
from .decode import Decoded, blobs, ciphers
from .english import (
    ACTIVE_MARKUP,
    ASSISTANT_CONTEXT,
    DECODE_AND_FOLLOW,
    DECODE_TRIGGERS,
    DEVELOPER_MODE,
    ENCODED,
    EXFILTRATION,
    FAKE_TURN,
    IGNORE,
    JAILBREAK,
    MARKER_RULES,
    MARKUP,
    OBFUSCATED,
    PERSONA,
    PERSONA_WORDS,
    PLANTED,
    REVEAL,
    SQUASHED_RULES,
    UNBOUND,
    WINDOW,
    WORD_RULES,
)
from .text import Offsets, disguised, fold, leet, native, squashed, words

# A digit next to a letter ("1gn0r3"): written digit first so that ``re`` skips
# to the digits of a text instead of trying every position.
_LEET_WORD = re.compile(r"[0-9](?:(?<=[a-z][0-9])|[a-z])")


def _any_of(literals: Iterable[str]) -> re.Pattern[str]:
    """Whether a text holds any of some strings, in one C call instead of a Python loop of ``in``."""
    return re.compile("|".join(re.escape(literal) for literal in sorted(set(literals))))


# The patterns over views, each searched only where one of its opening words
# is (anchors.py): built once, at import.
_WORD_RULES = [(flag, triggers, Anchored(pattern)) for flag, triggers, pattern in WORD_RULES]
_PERSONA = Anchored(PERSONA)
_UNBOUND = Anchored(UNBOUND)
_DEVELOPER_MODE = Anchored(DEVELOPER_MODE)
_ASSISTANT_CONTEXT = Anchored(ASSISTANT_CONTEXT)
_DECODE_AND_FOLLOW = Anchored(DECODE_AND_FOLLOW)
_LANGUAGE_RULES = [(flag, stems, _any_of(stems[2]), Anchored(pattern)) for flag, stems, pattern in languages.RULES]
_UNBOUND_STEMS = _any_of(languages.UNBOUND_STEMS[2])
_UNBOUND_PHRASES = Anchored(languages.UNBOUND_PHRASES)
# The squashed view's rules, and the same with their trigger words spelt
# backwards (for letters read backwards).  The squashed view has no words.
_SQUASHED_RULES = [
    [
        (flag, tuple(t[::-1] if reverse else t for t in sorted(triggers)), Anchored(pattern))
        for flag, triggers, pattern in SQUASHED_RULES
    ]
    for reverse in (False, True)
]
_SQUASHED_TRIGGERS = [
    _any_of(t[::-1] if reverse else t for _, triggers, _ in SQUASHED_RULES for t in triggers)
    for reverse in (False, True)
]
_NO_WORDS: frozenset[str] = frozenset()

__all__ = [
    "ENCODED",
    "EXFILTRATION",
    "FAKE_TURN",
    "FLAGS",
    "IGNORE",
    "JAILBREAK",
    "MARKUP",
    "MODES",
    "OBFUSCATED",
    "PLANTED",
    "REVEAL",
    "Finding",
    "Hit",
    "find",
    "scan_request",
    "scan_text",
]

MODES = ("off", "flag", "block")
FLAGS = (IGNORE, REVEAL, JAILBREAK, FAKE_TURN, PLANTED, EXFILTRATION, MARKUP, ENCODED, OBFUSCATED)


@dataclass(frozen=True, slots=True)
class Hit:
    """One pattern found: its flag, the request field, and where it is in that field.

    ``start`` and ``end`` count Unicode code points (Python string indices) in
    the field's text, ``end`` exclusive.
    """

    flag: str
    field: str
    start: int
    end: int

    def as_json(self) -> dict[str, object]:
        return {"flag": self.flag, "field": self.field, "start": self.start, "end": self.end}


@dataclass(frozen=True, slots=True)
class Finding:
    """The patterns found, the request field they were found in first, and each one's place."""

    flags: tuple[str, ...] = ()
    field: str | None = None
    hits: tuple[Hit, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.flags)


# A hit inside one text, before it is given its field.
Span = tuple[str, int, int]


def _word_hits(view: str, vocabulary: set[str], offsets: Offsets) -> Iterator[Span]:
    for flag, triggers, pattern in _WORD_RULES:
        if not triggers.isdisjoint(vocabulary):
            match = pattern.search(view, vocabulary)
            if match:
                yield (flag, *offsets.span(match.start(), match.end()))
    unbound = (
        [m.start() for m in _UNBOUND.finditer(view, vocabulary)] if not PERSONA_WORDS.isdisjoint(vocabulary) else []
    )
    for persona in _PERSONA.finditer(view, vocabulary) if unbound else ():
        # The nearest "unbound" cue at or after the persona's window start.
        i = bisect.bisect_left(unbound, persona.start() - WINDOW)
        if i < len(unbound) and unbound[i] <= persona.end() + WINDOW:
            yield (JAILBREAK, *offsets.span(persona.start(), persona.end()))
            break
    developer = _DEVELOPER_MODE.search(view, vocabulary) if "mode" in vocabulary else None
    if developer and _ASSISTANT_CONTEXT.search(view, vocabulary):
        yield (JAILBREAK, *offsets.span(developer.start(), developer.end()))
    if not DECODE_TRIGGERS.isdisjoint(vocabulary):
        match = _DECODE_AND_FOLLOW.search(view, vocabulary)
        if match:
            yield (ENCODED, *offsets.span(match.start(), match.end()))


def _squashed_hits(view: str, offsets: Offsets) -> Iterator[Span]:
    letters = squashed(view)
    for reverse in (False, True):
        # A rule's trigger words, spelt backwards when the text is read backwards, are
        # looked for in the letters as they are: most texts are never reversed at all.
        if len(letters) < 512 and not _SQUASHED_TRIGGERS[reverse].search(letters):
            continue  # a short text with none of the trigger words: one C call
        text = ""
        found = False
        for flag, triggers, pattern in _SQUASHED_RULES[reverse]:
            if any(t in letters for t in triggers):
                text = text or (letters[::-1] if reverse else letters)
                match = pattern.search(text, _NO_WORDS)
                if match:
                    found = True
                    yield (flag, *offsets.squashed_span(match.start(), match.end(), reverse))
        if found:
            return


def _native_hits(text: str, word_view: str, word_vocabulary: set[str], folded: str | None) -> Iterator[Span]:
    # For ASCII text the native view is the word view (no accents, no look-alikes to undo).
    view = word_view if text.isascii() else native(text, folded)
    offsets = Offsets(text, view, "native")
    ascii_only = view.isascii()
    vocabulary = word_vocabulary if view is word_view else set(view.split())
    for flag, (verbs, objects, _), stems, pattern in _LANGUAGE_RULES:
        if (
            not vocabulary.isdisjoint(verbs) and (not objects or not vocabulary.isdisjoint(objects))
            if ascii_only
            else stems.search(view)
        ):
            match = pattern.search(view, vocabulary)
            if match:
                yield (flag, *offsets.span(match.start(), match.end()))
    if vocabulary.isdisjoint(languages.UNBOUND_STEMS[0]) if ascii_only else not _UNBOUND_STEMS.search(view):
        return
    unbound = _UNBOUND_PHRASES.search(view, vocabulary)
    if unbound:
        persona = languages.PERSONA_PHRASES.search(view, max(0, unbound.start() - languages.WINDOW))
        if persona and persona.start() <= unbound.end() + languages.WINDOW:
            yield (languages.PERSONA_FLAG, *offsets.span(unbound.start(), unbound.end()))


def _plain_hits(
    text: str, view: str | None = None, folded: str | None = None, vocabulary: set[str] | None = None
) -> list[Span]:
    """What the views and markers of one text show, without decoding anything.

    ``view``, ``folded``, ``vocabulary``: ``words(text)``, ``fold(text)`` and
    the view's words, when the caller has them.
    """
    if view is None:
        folded = None if text.isascii() else fold(text)
        view = words(text, folded)
    if vocabulary is None:
        vocabulary = set(view.split())
    offsets = Offsets(text, view, "words")
    hits = list(_word_hits(view, vocabulary, offsets))
    if not hits and _LEET_WORD.search(view):
        # Leetspeak ("1gn0r3 4ll pr3v10us"): the same rules over the words with digits read as letters.
        read = leet(view)
        hits = list(_word_hits(read, set(read.split()), offsets))
        if hits:
            hits.append((OBFUSCATED, hits[0][1], hits[0][2]))
    for flag, triggers, strings, pattern in MARKER_RULES:
        if not triggers.isdisjoint(vocabulary) or (strings is not None and strings.search(text)):
            match = pattern.search(text)
            if match:
                hits.append((flag, match.start(), match.end()))
    seen = {flag for flag, _, _ in hits}
    hidden = [h for h in _squashed_hits(view, offsets) if h[0] not in seen]
    if hidden or (hits and disguised(text)):
        hits += hidden
        first = (hidden or hits)[0]
        hits.append((OBFUSCATED, first[1], first[2]))
    # Other languages last: their own letters are not look-alikes.
    hits += _native_hits(text, view, vocabulary, folded)
    return hits


def _decoded_hits(text: str, found: Decoded) -> list[Span]:
    inner = {flag for flag, _, _ in _plain_hits(found.text) if flag != OBFUSCATED}
    if ACTIVE_MARKUP.search(found.text):
        inner.add(MARKUP)
    hits: list[Span] = [(flag, found.start, found.end) for flag in sorted(inner)]
    if inner:
        hits.append((ENCODED, found.start, found.end))
    if found.hidden:
        hits.append((OBFUSCATED, found.start, found.end))
    return hits


def find(text: str) -> list[Span]:
    """Every (flag, start, end) found in one text, in the order found; one entry per flag."""
    folded = None if text.isascii() else fold(text)
    view = words(text, folded)
    vocabulary = set(view.split())
    hits = _plain_hits(text, view, folded, vocabulary)
    for found in blobs(text, vocabulary):
        hits += _decoded_hits(text, found)
    if not hits:
        for found in ciphers(text, view, vocabulary):
            hits += _decoded_hits(text, found)
    first: dict[str, Span] = {}
    for hit in hits:
        first.setdefault(hit[0], hit)
    return list(first.values())


def scan_text(text: str) -> tuple[str, ...]:
    """The patterns found in one text, sorted; ``()`` for none."""
    return tuple(sorted({flag for flag, _, _ in find(text)}))


def scan_request(chat: ChatRequest) -> Finding:
    """Scan what the person wrote: the prompt, or every user message."""
    texts: list[tuple[str, str]] = []
    if chat.prompt is not None:
        texts.append(("prompt", chat.prompt))
    for i, message in enumerate(chat.messages or ()):
        if message.role == "user":
            texts.append((f"messages[{i}].content", message.content))
    hits: list[Hit] = []
    first: str | None = None
    for where, text in texts:
        found = find(text)
        if found and first is None:
            first = where
        hits += [Hit(flag, where, start, end) for flag, start, end in found]
    flags = tuple(sorted({hit.flag for hit in hits}))
    return Finding(flags, first, tuple(hits))
