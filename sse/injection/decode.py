"""Text hidden in encodings a text scan can undo: what a blob decodes to, and where the blob is.

Base64 (standard and URL-safe), base32, base16/hex, Ascii85 and base85,
uuencode, quoted-printable and MIME encoded-words, URL escapes, Morse, braille,
the NATO alphabet, Unicode tag characters, variation-selector and "sneaky
bits" smuggling, zalgo (stacked combining marks); ROT13 and Atbash over the
whole text when it reads as no language.  Leetspeak, spacing and look-alike
letters are undone by the views in text.py, not here.

Bounded: at most MAX_BLOBS blobs decoded per text, each at most
MAX_BLOB_CHARS, and every pattern a run of one character class (linear).
"""

from __future__ import annotations

import base64
import binascii
import itertools
import quopri
import re
from collections.abc import Callable, Iterator
from urllib.parse import unquote

MAX_BLOBS = 32
MAX_BLOB_CHARS = 16_384
MIN_READABLE = 10
_ALL_HEX = re.compile(r"[0-9A-Fa-f]+")


class Decoded:
    """Readable text found in an encoded blob, the blob's place in the text, and the encoding's name."""

    __slots__ = ("encoding", "end", "hidden", "start", "text")

    def __init__(self, text: str, start: int, end: int, encoding: str, hidden: bool = False) -> None:
        self.text = text[: MAX_BLOB_CHARS * 4]
        self.start = start
        self.end = end
        self.encoding = encoding
        # A channel with no honest use in chat (invisible tag characters and the like).
        self.hidden = hidden


def _b64(blob: str) -> bytes:
    if len(blob) % 2 == 0 and _ALL_HEX.fullmatch(blob):
        return bytes.fromhex(blob)
    blob = blob.rstrip("=").replace("-", "+").replace("_", "/")
    return base64.b64decode(blob + "=" * (-len(blob) % 4), validate=True)


def _b32(blob: str) -> bytes:
    blob = blob.rstrip("=")
    return base64.b32decode(blob + "=" * (-len(blob) % 8))


def _hex(blob: str) -> bytes:
    digits = re.sub(r"0x|\\x|[\s:,]", "", blob)
    return bytes.fromhex(digits[: len(digits) // 2 * 2])


def _a85(blob: str) -> bytes:
    try:
        return base64.a85decode(blob.strip(), adobe=blob.startswith("<~"))
    except ValueError:
        return base64.b85decode(blob.strip())


def _b85(blob: str) -> bytes:
    return base64.b85decode(blob)


def _uu(blob: str) -> bytes:
    out = b""
    for line in blob.splitlines():
        # A line that carries data starts with its length character, never a space.
        line = line.lstrip()
        if line and not line.startswith(("begin ", "end")):
            out += binascii.a2b_uu(line)
    return out


def _unicode_escapes(blob: str) -> bytes:
    return "".join(chr(int(code, 16)) for code in re.findall(r"[0-9A-Fa-f]{4}", blob)).encode()


def _qp(blob: str) -> bytes:
    return quopri.decodestring(blob.encode("ascii", "ignore"))


def _mime_word(blob: str) -> bytes:
    charset_encoding, payload = blob[2:-2].split("?", 1)[1].split("?", 1)
    if charset_encoding.lower() == "b":
        return _b64(payload)
    return quopri.decodestring(payload.replace("_", " ").encode("ascii", "ignore"), header=True)


# (name, pattern, decoder).  Bounded repetitions only.
_BLOBS: list[tuple[str, re.Pattern[str], Callable[[str], bytes]]] = [
    ("mime", re.compile(r"=\?[\w-]{1,20}\?[bBqQ]\?[^?\s]{4,4000}\?="), _mime_word),
    ("base64", re.compile(r"[A-Za-z0-9+/\-_]{16,}={0,2}"), _b64),
    ("base32", re.compile(r"\b[A-Z2-7]{16,}={0,6}"), _b32),
    ("hex", re.compile(r"(?:(?:0x|\\x)[0-9A-Fa-f]{2}[\s:,]{0,2}){12,}"), _hex),
    ("ascii85", re.compile(r"<~[!-u]{10,}~>|[!-u]{20,}"), _a85),
    ("base85", re.compile(r"[0-9A-Za-z!#$%&()*+\-;<=>?@^_`{|}~]{20,}"), _b85),
    ("uuencode", re.compile(r"(?:[ -`]{4,61}\n){1,400}"), _uu),
    ("unicode escapes", re.compile(r"(?:\\u[0-9A-Fa-f]{4}){6,}"), _unicode_escapes),
    ("quoted-printable", re.compile(r"(?:[^\s=]{0,40}=[0-9A-F]{2}){3,}[^\s=]{0,40}"), _qp),
]
_QP_HINT = re.compile(r"=[0-9A-F]{2}")
_PERCENT = re.compile(r"(?:[A-Za-z0-9._~\-]{0,32}%[0-9A-Fa-f]{2}){4,}[A-Za-z0-9._~\-]{0,32}")

_MORSE = {
    ".-": "a", "-...": "b", "-.-.": "c", "-..": "d", ".": "e", "..-.": "f", "--.": "g", "....": "h", "..": "i",
    ".---": "j", "-.-": "k", ".-..": "l", "--": "m", "-.": "n", "---": "o", ".--.": "p", "--.-": "q", ".-.": "r",
    "...": "s", "-": "t", "..-": "u", "...-": "v", ".--": "w", "-..-": "x", "-.--": "y", "--..": "z",
    "-----": "0", ".----": "1", "..---": "2", "...--": "3", "....-": "4", ".....": "5", "-....": "6",
    "--...": "7", "---..": "8", "----.": "9", ".-.-.-": ".", "--..--": ",", "..--..": "?", ".----.": "'",
}  # fmt: skip
_MORSE_RUN = re.compile(r"(?:[.\-]{1,7}[ /]{1,3}){5,}[.\-]{1,7}")

_BRAILLE = dict(
    zip(
        "\u2801\u2803\u2809\u2819\u2811\u280b\u281b\u2813\u280a\u281a\u2805\u2807\u280d\u281d\u2815\u280f\u281f"
        "\u2817\u280e\u281e\u2825\u2827\u283a\u282d\u283d\u2835\u2832\u2802\u2804\u2824\u2816\u2826\u2812",
        "abcdefghijklmnopqrstuvwxyz.,'-!?:",
        strict=True,
    )
)
_BRAILLE_RUN = re.compile(r"[\u2800-\u28ff][\u2800-\u28ff \n]{5,}")

_NATO_WORDS = (
    "alfa alpha bravo charlie delta echo foxtrot golf hotel india juliet juliett kilo lima mike november oscar "
    "papa quebec romeo sierra tango uniform victor whiskey xray x-ray yankee zulu"
)
_NATO_SET = frozenset(_NATO_WORDS.split())
_NATO_RUN = re.compile(rf"\b(?:(?:{'|'.join(_NATO_WORDS.split())})\b[\s,]{{1,3}}){{4,}}", re.IGNORECASE)

_TAGS = re.compile(r"[\U000e0020-\U000e007e]{4,}")
_VARIATION = re.compile(r"[\ufe00-\ufe0f\U000e0100-\U000e01ef]{4,}")
_SNEAKY = re.compile(r"[\u2062\u2064\u200b]{8,}")
_ZALGO_MARK = re.compile(r"[\u0300-\u036f\u0483-\u0489\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
_ZALGO_RUN = re.compile(r"\w[\u0300-\u036f\u0483-\u0489\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]{3,}")

# A character every braille, tag, variation-selector, sneaky-bits and zalgo
# blob holds: one scan decides whether any of their five is worth running.
_SYMBOL_CHARACTER = re.compile(
    "[\u2800-\u28ff\ufe00-\ufe0f\u2062\u2064\u200b"
    "\u0300-\u036f\u0483-\u0489\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]"
    "|[\U000e0020-\U000e007e\U000e0100-\U000e01ef]"
)
_ROT13_HINT = re.compile(r"\b(?:rot\s?-?13|caesar|rotate\s(?:each|every|all)\s(?:letter|character))", re.IGNORECASE)
_ROT13 = str.maketrans(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", "nopqrstuvwxyzabcdefghijklmNOPQRSTUVWXYZABCDEFGHIJKLM"
)
_ATBASH = str.maketrans(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", "zyxwvutsrqponmlkjihgfedcbaZYXWVUTSRQPONMLKJIHGFEDCBA"
)
# Words of English common enough that ordinary text is full of them, and text
# in ROT13 or Atbash (or another language) is not.
_COMMON = frozenset(
    [
        "the",
        "be",
        "to",
        "of",
        "and",
        "a",
        "in",
        "that",
        "have",
        "i",
        "it",
        "for",
        "not",
        "on",
        "with",
        "he",
        "as",
        "you",
        "do",
        "at",
        "this",
        "but",
        "his",
        "by",
        "from",
        "they",
        "we",
        "say",
        "her",
        "she",
        "or",
        "an",
        "will",
        "my",
        "one",
        "all",
        "would",
        "there",
        "their",
        "what",
        "so",
        "up",
        "out",
        "if",
        "about",
        "who",
        "get",
        "which",
        "go",
        "me",
        "when",
        "make",
        "can",
        "like",
        "time",
        "no",
        "just",
        "him",
        "know",
        "take",
        "people",
        "into",
        "year",
        "your",
        "good",
        "some",
        "could",
        "them",
        "see",
        "other",
        "than",
        "then",
        "now",
        "look",
        "only",
        "come",
        "its",
        "over",
        "think",
        "also",
        "back",
        "after",
        "use",
        "two",
        "how",
        "our",
        "work",
        "first",
        "well",
        "way",
        "even",
        "new",
        "want",
        "because",
        "any",
        "these",
        "give",
        "day",
        "most",
        "us",
        "is",
        "are",
        "was",
        "were",
        "has",
        "had",
        "been",
        "said",
        "did",
        "does",
        "please",
        "thanks",
        "hi",
        "hello",
    ]
)


def readable(text: str) -> bool:
    """Mostly letters and spaces: decoded prose or markup, not bytes that happened to decode."""
    if len(text) < MIN_READABLE:
        return False
    good = sum(1 for c in text if c.isalpha() or c in " ,.'\"?!:;-\n<>/()=")
    return good >= 0.8 * len(text) and (" " in text.strip() or "<" in text)


def _text_of(raw: bytes) -> str | None:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


_NO_SPACE = frozenset(["base64", "base32", "ascii85", "base85", "unicode escapes"])


def _long_runs(text: str) -> list[tuple[int, str]]:
    """Each run of 16 or more non-space characters (``\\S{16,}``) and where it starts.

    ``str.split`` cuts at the characters ``\\s`` matches, in one C pass;
    the few long runs are then found in order with ``str.find``.
    """
    runs = []
    at = 0
    for run in text.split():
        if len(run) >= 16:
            at = text.find(run, at)
            runs.append((at, run))
            at += len(run)
    return runs


def blobs(text: str, vocabulary: set[str] | frozenset[str] = frozenset()) -> Iterator[Decoded]:
    """Every readable text hidden in an encoded blob of ``text``, within the bounds.

    ``vocabulary``: the words of the text's word view, when the caller has them (for the NATO alphabet).
    """
    found = 0
    # The blobs that hold no space are looked for only inside runs of 16 or
    # more non-space characters: one pass over ordinary prose instead of one
    # per encoding.
    runs = _long_runs(text)
    for name, pattern, decode in _BLOBS:
        if name in _NO_SPACE:
            places = runs
        elif (
            (name == "mime" and "=?" not in text)
            or (name == "quoted-printable" and not _QP_HINT.search(text))
            or (name == "hex" and "0x" not in text and "\\x" not in text)
            or (name == "uuencode" and not runs)
        ):
            continue
        else:
            places = [(0, text)]
        for offset, place in places:
            for match in pattern.finditer(place):
                if found >= MAX_BLOBS:
                    return
                blob = match.group(0)[:MAX_BLOB_CHARS]
                try:
                    decoded = _text_of(decode(blob))
                except (ValueError, binascii.Error, IndexError):
                    continue
                if decoded is not None and readable(decoded):
                    found += 1
                    yield Decoded(decoded, offset + match.start(), offset + match.end(), name)
    if "%" in text:
        for match in _PERCENT.finditer(text):
            if found >= MAX_BLOBS:
                return
            try:
                decoded = unquote(match.group(0)[:MAX_BLOB_CHARS], errors="strict")
            except UnicodeDecodeError:
                continue
            if readable(decoded):
                found += 1
                yield Decoded(decoded, match.start(), match.end(), "url")
    yield from itertools.islice(_symbols(text, vocabulary), max(0, MAX_BLOBS - found))


def _symbols(text: str, vocabulary: set[str] | frozenset[str]) -> Iterator[Decoded]:
    """Morse, braille, NATO words, invisible smuggling, zalgo."""
    if text.count(".") + text.count("-") > len(text) // 4:
        for match in _MORSE_RUN.finditer(text):
            letters = (
                "".join(_MORSE.get(code, "?") for code in word.split())
                for word in re.split(r"\s*/\s*|\s{3}", match.group(0))
            )
            yield Decoded(" ".join(letters), match.start(), match.end(), "morse")
    if not text.isascii() and _SYMBOL_CHARACTER.search(text):
        for match in _BRAILLE_RUN.finditer(text):
            yield Decoded("".join(_BRAILLE.get(c, c) for c in match.group(0)), match.start(), match.end(), "braille")
        for match in _TAGS.finditer(text):
            decoded = "".join(chr(ord(c) - 0xE0000) for c in match.group(0))
            flag_emoji = match.start() > 0 and text[match.start() - 1] == "\U0001f3f4"
            if not flag_emoji:
                yield Decoded(decoded, match.start(), match.end(), "tag characters", hidden=True)
        for match in _VARIATION.finditer(text):
            decoded = "".join(_variation_byte(c) for c in match.group(0))
            if readable(decoded):
                yield Decoded(decoded, match.start(), match.end(), "variation selectors", hidden=True)
        for match in _SNEAKY.finditer(text):
            decoded = _sneaky(match.group(0))
            if decoded and readable(decoded):
                yield Decoded(decoded, match.start(), match.end(), "sneaky bits", hidden=True)
        if _ZALGO_RUN.search(text):
            stripped = _ZALGO_MARK.sub("", text[: MAX_BLOB_CHARS * 4])
            yield Decoded(stripped, 0, len(text), "zalgo")
    if len(_NATO_SET.intersection(vocabulary or text.casefold().split())) < 3:
        return
    for match in itertools.islice(_NATO_RUN.finditer(text), MAX_BLOBS):
        words = re.findall(r"[A-Za-z-]+", match.group(0))
        yield Decoded("".join(w[0] for w in words).lower(), match.start(), match.end(), "nato")


def _variation_byte(char: str) -> str:
    code = ord(char)
    value = code - 0xFE00 if code <= 0xFE0F else code - 0xE0100 + 16
    # garak-style smuggling maps a character straight to U+E0100 + code point.
    if code >= 0xE0100 and code - 0xE0100 < 128:
        value = code - 0xE0100
    return chr(value) if 32 <= value < 127 or value in (9, 10) else ""


def _sneaky(run: str) -> str:
    out = []
    for word in run.split("\u200b"):
        bits = word.replace("\u2062", "0").replace("\u2064", "1")
        # Each character is its code point in binary without leading zeros; ASCII letters take 7 bits.
        for i in range(0, len(bits) - len(bits) % 7, 7):
            out.append(chr(int(bits[i : i + 7], 2)))
        out.append(" ")
    return "".join(out).strip()


def ciphers(text: str, word_view: str, vocabulary: set[str] | None = None) -> Iterator[Decoded]:
    """ROT13 and Atbash of the whole text, when it hints at them or its words decode to English.

    ``vocabulary``: ``set(word_view.split())``, when the caller has it.
    """
    if vocabulary is None:
        vocabulary = set(word_view.split())
    if len(vocabulary) < 4:
        return
    if text.isascii():
        # Every hint holds "rot" or "caesar", in any case; in ASCII, case is what lower() undoes.
        lower = text.lower()
        hinted = ("rot" in lower or "caesar" in lower) and _ROT13_HINT.search(text) is not None
    else:
        hinted = _ROT13_HINT.search(text) is not None
    plain = len(_COMMON.intersection(vocabulary))
    if not hinted and plain * 3 >= len(vocabulary):
        return  # reads as English already
    head = text[: MAX_BLOB_CHARS * 4]
    for name, table in (("rot13", _ROT13), ("atbash", _ATBASH)):
        # Decoding the words first is cheap; scan the decoded text only when it
        # reads as English more than the text itself does.
        decoded = len(_COMMON.intersection(word_view.translate(table).split()))
        if hinted or (decoded >= 3 and decoded > plain):
            yield Decoded(head.translate(table), 0, len(text), name)


def _common(vocabulary: list[str]) -> int:
    return sum(1 for w in vocabulary if w in _COMMON)
