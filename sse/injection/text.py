"""Normalised views of a text, and the way back from a view to the text.

The rules match views, not the raw text: lower-case words separated by single
spaces, look-alike letters and invisible characters undone (the *word view*);
letters only, leetspeak undone (the *squashed view*); and, for languages other
than English, the words with accents stripped but the script kept (the
*native view*).  A match in a view is turned back into offsets in the text a
person sent, so a page can show where it is.

Building a view is a handful of C-level string operations, because every text
pays for it.  The way back is a per-character walk, built only for a text
that matched something.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cached_property

_CONFUSABLES = str.maketrans(
    {
        # Cyrillic and Greek letters that look like Latin ones.
        "а": "a", "в": "b", "е": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c",
        "т": "t", "у": "y", "х": "x", "і": "i", "ј": "j", "ѕ": "s", "ԁ": "d", "ӏ": "l", "ɡ": "g",
        "α": "a", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "χ": "x",
        # Turkish dotless i and the dot that casefolding leaves after a dotted capital İ.
        "ı": "i", "\u0307": "",
    }
)  # fmt: skip
CONFUSABLE_CHARS = frozenset(chr(c) for c in _CONFUSABLES if chr(c) not in "ı\u0307")
LEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g", "@": "a", "$": "s", "!": "i"}
)
# Unicode's format characters (category Cf): zero-width spaces and joiners,
# direction marks, soft hyphens, tag characters -- invisible, so removed.
_INVISIBLE_BMP = (
    "\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u202a-\u202e"
    "\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb"
)
INVISIBLE = re.compile(
    f"[{_INVISIBLE_BMP}\U000110bd\U000110cd\U00013430-\U0001343f"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f]"
)
# Whether INVISIBLE can find anything, ten times faster: ``re`` tests a class
# of characters below U+10000 with one table lookup, but walks a list of
# ranges when the class reaches beyond it, as INVISIBLE does.
_MAY_BE_INVISIBLE = re.compile(f"[{_INVISIBLE_BMP}]|[\U00010000-\U0010ffff]")
# Combining marks of the common scripts: Latin, Greek, Cyrillic, Hebrew, Arabic, Devanagari, Thai, kana.
_COMBINING = re.compile(
    "[\u0300-\u036f\u0483-\u0489\u0591-\u05c7\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed"
    "\u0900-\u0903\u093a-\u094f\u0951-\u0957\u0962\u0963\u0e31\u0e34-\u0e3a\u0e47-\u0e4e"
    "\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\u3099\u309a\ufe20-\ufe2f]"
)
_NOT_WORD = re.compile(r"[\W_]+")
_APOSTROPHES = str.maketrans({"'": None, "’": None})
_MAY_BE_CONFUSABLE = re.compile("[" + "".join(map(chr, _CONFUSABLES)) + "]")

# The same operations on ASCII as bytes: ``bytes.translate`` maps and deletes
# in one C loop, where ``str.translate`` and ``re.sub`` cost ten to fifty
# times more per character.  Views are built for every text, so this matters.
_ASCII_WORD = bytes(ord(chr(c).lower()) if chr(c).isalnum() else ord(" ") for c in range(128)) + b" " * 128
_LEET_BYTES = bytes(LEET.get(c, chr(c)).encode()[0] if c < 128 else c for c in range(256))
_NOT_SQUASHED = bytes(c for c in range(256) if not ("a" <= chr(c) <= "z" or c in LEET))


def _ascii_words(text: str) -> str:
    """``words`` of an ASCII text: letters and digits in lower case, anything else a single space."""
    return " ".join(text.encode("ascii").translate(_ASCII_WORD, b"'").decode("ascii").split())


_UTF8_WORD = bytes(c if chr(c).isalnum() or c >= 128 else ord(" ") for c in range(256))
_NON_ASCII_RUN = re.compile(r"[^\x00-\x7f]+")
_FEW_SEPARATORS = 32


def _separate(text: str) -> str:
    """``_NOT_WORD.sub(" ", text).strip()``, without scanning every character in ``re``.

    Most long texts that are not ASCII are English with a few curly quotes or
    dashes, and a text in another script has few kinds of punctuation: each
    kind of non-ASCII character that is not a letter or a digit is replaced
    by a space (``str.replace``, a C loop), then the ASCII ones in one pass of
    ``bytes.translate`` over the UTF-8 (whose bytes above 127 it leaves alone).
    """
    separators = [c for c in set("".join(_NON_ASCII_RUN.findall(text))) if not c.isalnum()]
    if len(separators) > _FEW_SEPARATORS:
        return _NOT_WORD.sub(" ", text).strip()
    for separator in separators:
        text = text.replace(separator, " ")
    # A lone surrogate (JSON allows "\\ud800") is not a letter: replaced above, never encoded.
    return " ".join(text.encode("utf-8").translate(_UTF8_WORD).decode("utf-8").split())


def fold(text: str) -> str:
    """NFKC, case folded, invisible characters removed: what the word view and the native view start from."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return INVISIBLE.sub("", text) if _MAY_BE_INVISIBLE.search(text) else text


def words(text: str, folded: str | None = None) -> str:
    """Lower-case words separated by single spaces, look-alikes and invisibles undone.

    ``folded``: ``fold(text)``, when the caller has it already.
    """
    if text.isascii():
        # Nothing to normalise, no look-alikes, no invisibles: the cheap path most text takes.
        return _ascii_words(text)
    text = fold(text) if folded is None else folded
    if _MAY_BE_CONFUSABLE.search(text):
        text = text.translate(_CONFUSABLES)
    text = text.replace("'", "").replace("’", "")
    return _ascii_words(text) if text.isascii() else _separate(text)


def leet(word_view: str) -> str:
    """The word view with digits and symbols read as letters ("1gn0r3" -> "ignore").

    Over UTF-8, whose bytes above 127 the table leaves alone, so any view takes the C path.
    """
    return word_view.encode("utf-8", "surrogatepass").translate(_LEET_BYTES).decode("utf-8", "surrogatepass")


def squashed(word_view: str) -> str:
    """Letters only, leetspeak undone: what "1 g n 0 r 3  a.l.l" is made of.

    Every byte of a character outside ASCII is deleted with the rest, so any view takes the C path.
    """
    return word_view.encode("utf-8", "surrogatepass").translate(_LEET_BYTES, _NOT_SQUASHED).decode("ascii")


def strip_accents(text: str) -> str:
    """Letters without their combining marks ("é" -> "e"), any script; cheap when there are none."""
    if text.isascii():
        return text
    return _COMBINING.sub("", unicodedata.normalize("NFD", text))


def native(text: str, folded: str | None = None) -> str:
    """Lower-case words of any script, accents stripped, invisibles removed, single spaces.

    ``folded``: ``fold(text)``, when the caller has it already.
    """
    text = strip_accents(fold(text) if folded is None else folded)
    text = text.replace("ı", "i").replace("'", "").replace("’", "")
    return _ascii_words(text) if text.isascii() else _separate(text)


_LOOK_ALIKE = re.compile("[" + "".join(sorted(CONFUSABLE_CHARS)) + "]")


def disguised(text: str) -> bool:
    """Look-alike letters, invisible characters or compatibility forms (fullwidth) in the text."""
    if text.isascii():
        return False  # none of the three is ASCII
    return (
        (_MAY_BE_INVISIBLE.search(text) is not None and INVISIBLE.search(text) is not None)
        or _LOOK_ALIKE.search(text) is not None
        or unicodedata.normalize("NFKC", text) != text
    )


_TOKEN = re.compile(r"[^\W_](?:['’]{0,8}[^\W_])*")
_ASCII_TOKEN = re.compile(r"[A-Za-z0-9]+")
WALK_LIMIT = 20_000  # characters: beyond this a text whose tokens disagree with its view gets the whole-text span


class Offsets:
    """Maps positions in a view of ``text`` back to positions in ``text``.

    A view's words are the text's words, in order: the k-th word of the view
    is the k-th word of the text.  Only when normalisation split or joined
    words (invisible characters inside a word, compatibility forms) does that
    fail; then a character-by-character walk rebuilds the view with each
    character's origin, for texts up to WALK_LIMIT characters.
    """

    def __init__(self, text: str, view: str, kind: str) -> None:
        self.text = text
        self.view = view
        self.kind = kind

    @cached_property
    def _tokens(self) -> list[tuple[int, int]] | None:
        # In ASCII with no apostrophe a token is a run of letters and digits: a class ``re`` tests with one lookup.
        ascii_only = self.text.isascii() and "'" not in self.text
        tokens = [m.span() for m in (_ASCII_TOKEN if ascii_only else _TOKEN).finditer(self.text)]
        return tokens if len(tokens) == self.view.count(" ") + 1 else None

    def _token_position(self, position: int, tokens: list[tuple[int, int]]) -> int:
        k = self.view.count(" ", 0, position)
        inside = position - (self.view.rfind(" ", 0, position) + 1)
        start, end = tokens[min(k, len(tokens) - 1)]
        return min(start + max(inside, 0), end)

    @cached_property
    def _walk(self) -> tuple[str, list[int]]:
        """The view rebuilt one character at a time, with each character's origin."""
        out: list[str] = []
        origin: list[int] = []
        space = True
        for i, char in enumerate(self.text):
            if INVISIBLE.fullmatch(char):
                continue
            piece = unicodedata.normalize("NFKC", char).casefold()
            piece = strip_accents(piece).replace("ı", "i") if self.kind == "native" else piece.translate(_CONFUSABLES)
            for c in piece.translate(_APOSTROPHES):
                if c.isalnum():
                    out.append(c)
                    origin.append(i)
                    space = False
                elif not space:
                    out.append(" ")
                    origin.append(i)
                    space = True
        while out and out[-1] == " ":
            out.pop()
            origin.pop()
        return "".join(out), origin

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The text's [start, end) for the view's [start, end)."""
        if end <= start:
            return 0, len(self.text)
        tokens = self._tokens
        if tokens:
            return self._token_position(start, tokens), self._token_position(end - 1, tokens) + 1
        if len(self.text) > WALK_LIMIT:
            return 0, len(self.text)
        walked, origin = self._walk
        if walked != self.view:
            found = walked.find(self.view[start:end])
            if found < 0:
                return 0, len(self.text)
            start, end = found, found + (end - start)
        if not origin or start >= len(origin):
            return 0, len(self.text)
        return origin[start], origin[min(end, len(origin)) - 1] + 1

    @cached_property
    def _letters(self) -> list[int]:
        """For the squashed view: each letter's position in the word view."""
        translated = self.view.translate(LEET)
        return [i for i, c in enumerate(translated) if "a" <= c <= "z"]

    def squashed_span(self, start: int, end: int, reverse: bool = False) -> tuple[int, int]:
        letters = self._letters
        if reverse:
            start, end = len(letters) - end, len(letters) - start
        if not letters or start >= len(letters) or end <= start:
            return 0, len(self.text)
        return self.span(letters[start], letters[min(end, len(letters)) - 1] + 1)
