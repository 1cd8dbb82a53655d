"""Searching a view only where a pattern's match can begin.

A rule's pattern is an alternation of phrases, most of which open with one
of a few dozen words ("ignore", "reveal", "you are" ...).  ``re`` tries the
whole alternation at every position of the text, so a search costs about
the same on a 5 KB document that never says "ignore" as on one that does,
and most of the detector's time went there.  An :class:`Anchored` pattern
knows the literal words every match starts with -- read from the pattern
itself when it is compiled, never written out by hand -- and looks for
those words first: a set lookup in the text's vocabulary, then ``str.find``
(a C loop), then ``pattern.match`` at each place found.

The result is the same ``re.Match`` ``pattern.search`` would return, because
``search`` is ``match`` tried at each position from left to right, and a
position where no anchor word begins cannot start a match.  A text with many
anchor words and no match (the anchors of "you are" in a long story) falls
back to one ordinary ``search`` from the first place not yet tried, after a
budget of tries proportional to its length: never much slower than before.

What the reading of a pattern understands: literals, small classes of
literal characters, groups, alternations, optional and repeated pieces,
``\\b`` and the other zero-width assertions.  ``\\s`` is read as one space,
which is what every view holds between words (text.py: views are words of
letters and digits joined by single spaces; the squashed view has no
spaces, and its patterns no ``\\s``).  Anything else ends an anchor
where it stands; a pattern whose anchors could be empty, or that ignores
case, is searched the ordinary way.
"""

from __future__ import annotations

import heapq
import importlib
import re
from collections.abc import Iterator, Set
from typing import Any

# The parser ``re`` compiles with; private, so anything unexpected in it --
# down to its absence -- makes a pattern fall back to an ordinary search rather than fail.
_parser: Any
_c: Any
try:
    _parser = importlib.import_module("re._parser")
    _c = importlib.import_module("re._constants")
except ImportError:  # pragma: no cover - a Python whose re is built differently
    _parser = _c = None

_BOUNDARY = "\x00"  # stands for a ``\b`` while anchors are read
_MAX_ANCHORS = 512  # more alternatives than this and reading stops where it is
_Prefixes = tuple[frozenset[str], bool]  # strings one of which starts every match; whether they span the piece


def _settled(prefix: str, bounded: bool) -> bool:
    """Whether reading further would add nothing to a prefix.

    It holds a whole first word (a space after some letters), or, with no
    ``\\b`` before it to make its first word one to look up, four characters
    ("忽略之前" ...): enough to find it, and not a thousand variants of it.
    """
    body = prefix.lstrip(" " + _BOUNDARY)
    if bounded or prefix.startswith(_BOUNDARY):
        return " " in body
    return " " in body or len(body.replace(_BOUNDARY, "")) >= 4


def _shorten(prefixes: frozenset[str]) -> frozenset[str]:
    """Fewer, shorter prefixes: the start of a string every match starts with is one too."""
    while len(prefixes) > _MAX_ANCHORS:
        longest = max(len(p) for p in prefixes)
        prefixes = frozenset(p[: longest - 1] for p in prefixes)
    return prefixes


def _sequence(items: list[tuple[Any, Any]], bounded: bool = False) -> _Prefixes:
    """The prefixes of a sequence of parsed elements; ``bounded``: a ``\\b`` comes before it."""
    prefixes: frozenset[str] = frozenset([""])
    for op, av in items:
        bounded = bounded or any(p.startswith(_BOUNDARY) for p in prefixes)
        if all(_settled(p, bounded) for p in prefixes):
            # Every anchor is cut after its first word: what follows cannot change them.
            return prefixes, True
        piece = _piece(op, av, bounded)
        if piece is None:
            return prefixes, False
        strings, complete = piece
        grown = frozenset(p if _settled(p, bounded) else p + s for p in prefixes for s in strings)
        if len(grown) > _MAX_ANCHORS:
            return _shorten(grown), False
        prefixes = grown
        if not complete:
            return prefixes, False
    return prefixes, True


def _piece(op: Any, av: Any, bounded: bool) -> _Prefixes | None:
    """The strings one element of a parsed pattern starts with, or None if they are not a few literals."""
    if op is _c.LITERAL:
        return frozenset([chr(av)]), True
    if op is _c.AT:
        return frozenset([_BOUNDARY if av is _c.AT_BOUNDARY else ""]), True
    if op in (_c.ASSERT, _c.ASSERT_NOT):
        return frozenset([""]), True  # zero width: what follows still starts the match
    if op is _c.IN:
        chars = []
        for kind, value in av:
            if kind is _c.LITERAL:
                chars.append(chr(value))
            elif kind is _c.CATEGORY and value is _c.CATEGORY_SPACE:
                chars.append(" ")  # a view's only space
            else:
                return None
        return frozenset(chars), True
    if op is _c.SUBPATTERN:
        _group, add_flags, _del_flags, body = av
        if add_flags & _c.SRE_FLAG_IGNORECASE:
            return None
        return _sequence(list(body), bounded)
    if op is _c.BRANCH:
        union: set[str] = set()
        complete = True
        for branch in av[1]:
            strings, whole = _sequence(list(branch), bounded)
            union |= strings
            complete = complete and whole
        if len(union) > _MAX_ANCHORS:
            return _shorten(frozenset(union)), False
        return frozenset(union), complete
    if op in (_c.MAX_REPEAT, _c.MIN_REPEAT):
        low, high, body = av
        strings, whole = _sequence(list(body), bounded)
        if low == 0:
            return strings | {""}, whole and high == 1
        return strings, whole and low == high == 1
    return None


# (needle, shift, word): the needle is looked for in " " + view, a match may start at
# where it is found + shift, and when word is given the needle cannot be there
# unless the word is among the view's words.
Anchor = tuple[str, int, str | None]


def anchors(pattern: re.Pattern[str]) -> tuple[Anchor, ...] | None:
    """The anchors of a pattern, or None when it must be searched the ordinary way."""
    if pattern.flags & re.IGNORECASE or _parser is None:
        return None
    try:
        prefixes, _ = _sequence(list(_parser.parse(pattern.pattern, pattern.flags)))
    except Exception:  # an unfamiliar parse tree costs speed, never a match
        return None
    found: dict[tuple[str, bool], str | None] = {}
    for prefix in prefixes:
        body = prefix.lstrip(_BOUNDARY)
        word_start = body != prefix and body[:1].isalnum()
        lead = len(body) - len(body.lstrip(" " + _BOUNDARY))
        space = body.find(" ", lead)
        if space >= 0:
            body = body[: space + 1]
        needle = body.replace(_BOUNDARY, "")
        if not needle.strip():
            return None  # a match could start anywhere
        whole = body.endswith(" ") or body.endswith(_BOUNDARY)
        first = needle.strip()
        # A word to look up before any find: one whole word, known to start where the needle does.
        known = (word_start or needle.startswith(" ")) and whole and " " not in first
        found[(needle, word_start)] = first if known else None
    # A needle another needle begins with adds no place the shorter one does not find.
    kept: list[tuple[str, bool]] = []
    for needle, word_start in sorted(found, key=lambda key: len(key[0])):
        if not any(needle.startswith(n) and (word_start or not w) for n, w in kept):
            kept.append((needle, word_start))
    # At a word's start means after a space in " " + view: the space is part of the needle.
    return tuple(
        (" " + needle, 0, found[(needle, True)]) if word_start else (needle, -1, found[(needle, False)])
        for needle, word_start in kept
    )


class Anchored:
    """A compiled pattern searched only where its anchors are (the same results as ``pattern``'s own)."""

    __slots__ = ("anchors", "by_word", "pattern", "unbound", "words")

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self.pattern = pattern
        self.anchors = anchors(pattern)
        # The anchors with a word are tried only for the words a text has (one C
        # intersection finds them), the others always.
        self.by_word: dict[str, list[tuple[str, int]]] = {}
        self.unbound: list[tuple[str, int]] = []
        for needle, shift, word in self.anchors or ():
            if word is None:
                self.unbound.append((needle, shift))
            else:
                self.by_word.setdefault(word, []).append((needle, shift))
        self.words = frozenset(self.by_word)

    def _places(self, padded: str, vocabulary: Set[str]) -> list[tuple[int, str, int]]:
        """The first place of each anchor in `` " " + view``, as (place in the view, needle, shift)."""
        places = []
        for needle, shift in self.unbound:
            at = padded.find(needle, -shift)
            if at >= 0:
                places.append((at + shift, needle, shift))
        for word in self.words.intersection(vocabulary):
            for needle, shift in self.by_word[word]:
                at = padded.find(needle, -shift)
                if at >= 0:
                    places.append((at + shift, needle, shift))
        return places

    def finditer(self, view: str, vocabulary: Set[str]) -> Iterator[re.Match[str]]:
        """What ``pattern.finditer(view)`` yields; ``vocabulary`` is ``set(view.split())``."""
        if self.anchors is None:
            yield from self.pattern.finditer(view)
            return
        padded = " " + view
        places = self._places(padded, vocabulary)
        heapq.heapify(places)
        budget = 8 + len(view) // 64  # tries before one ordinary scan costs less
        tried, floor = -1, 0
        while places:
            at, needle, shift = places[0]
            if at >= floor and at != tried:
                if budget == 0:
                    yield from self.pattern.finditer(view, at)
                    return
                budget -= 1
                tried = at
                match = self.pattern.match(view, at)
                if match:
                    yield match
                    floor = match.end()
            following = padded.find(needle, max(at + 1, floor) - shift)
            if following < 0:
                heapq.heappop(places)
            else:
                heapq.heapreplace(places, (following + shift, needle, shift))

    def search(self, view: str, vocabulary: Set[str]) -> re.Match[str] | None:
        """What ``pattern.search(view)`` returns; ``vocabulary`` is ``set(view.split())``."""
        if not self.unbound and self.anchors is not None and self.words.isdisjoint(vocabulary):
            return None  # the common case, in one C call
        return next(self.finditer(view, vocabulary), None)
