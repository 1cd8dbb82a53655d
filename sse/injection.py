"""A small heuristic detector of classic prompt-injection patterns.

It reads what the person sent (the ``prompt``, and every ``user`` message) and
names the patterns it recognises:

* ``ignore_instructions`` -- "ignore all previous instructions", "forget your
  rules", "disregard everything above";
* ``reveal_system_prompt`` -- "print your system prompt", "repeat the words
  above starting with 'You are'", "what were your initial instructions?";
* ``jailbreak_roleplay`` -- DAN ("do anything now"), "developer mode enabled",
  personas "without any restrictions/filters/ethics", "jailbroken";
* ``fake_system_turn`` -- chat-template markers or fake headers that try to
  open a system turn (``<|im_start|>system``, ``<<SYS>>``, "[system]: new rules");
* ``encoded_payload`` -- base64, hex, URL-encoded or ROT13 text that decodes
  to one of the above (the decoded pattern is named as well);
* ``obfuscated`` -- one of the above hidden by spacing ("i g n o r e"),
  punctuation, leetspeak ("1gn0r3"), look-alike letters (Cyrillic "о"),
  fullwidth forms, invisible characters, or written backwards.

What it is: regular expressions over a few normalised views of the text,
linear in its length, a few milliseconds for the largest request.  What it is
not: a classifier.  It misses paraphrases ("pay no attention to what you were
told"), other languages, instructions split across messages, indirect
injection in documents the model reads later, and anything new; and it flags
some honest text about these very things.  README's "Protection" section says
the same to operators; tests/test_injection.py measures it on a corpus.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import codecs
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import unquote

from .chat import ChatRequest

MODES = ("off", "flag", "block")

IGNORE = "ignore_instructions"
REVEAL = "reveal_system_prompt"
JAILBREAK = "jailbreak_roleplay"
FAKE_TURN = "fake_system_turn"
ENCODED = "encoded_payload"
OBFUSCATED = "obfuscated"

# Bounds on the work done for one text: encoded blobs looked at, and their size.
MAX_BLOBS = 32
MAX_BLOB_CHARS = 16_384


@dataclass(frozen=True, slots=True)
class Finding:
    """The patterns found, and the request field they were found in first."""

    flags: tuple[str, ...] = ()
    field: str | None = None

    def __bool__(self) -> bool:
        return bool(self.flags)


# -- normalisation

_CONFUSABLES = str.maketrans(
    {
        # Cyrillic and Greek letters that look like Latin ones.
        "а": "a", "в": "b", "е": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c",
        "т": "t", "у": "y", "х": "x", "і": "i", "ј": "j", "ѕ": "s", "ԁ": "d", "ӏ": "l", "ɡ": "g",
        "α": "a", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "χ": "x",
    }
)  # fmt: skip
_CONFUSABLE_CHARS = frozenset(chr(c) for c in _CONFUSABLES)
_LEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g", "@": "a", "$": "s", "!": "i"}
)
# Unicode's format characters (category Cf): zero-width spaces and joiners,
# direction marks, soft hyphens, tag characters -- invisible, so removed.
_INVISIBLE = re.compile(
    "[\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u202a-\u202e"
    "\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f]"
)
_NOT_WORD = re.compile(r"[\W_]+")
_NOT_LETTER = re.compile(r"[^a-z]+")


def _words(text: str) -> str:
    """Lower-case words separated by single spaces, look-alikes and invisibles undone."""
    text = _INVISIBLE.sub("", unicodedata.normalize("NFKC", text).casefold())
    text = text.translate(_CONFUSABLES).replace("'", "").replace("’", "")
    return _NOT_WORD.sub(" ", text).strip()


def _disguised(text: str) -> bool:
    """Look-alike letters, invisible characters or compatibility forms (fullwidth) in the text."""
    return (
        _INVISIBLE.search(text) is not None
        or not _CONFUSABLE_CHARS.isdisjoint(text)
        or unicodedata.normalize("NFKC", text) != text
    )


def _squashed(words: str) -> str:
    """Letters only, leetspeak undone: what "1 g n 0 r 3  a.l.l" is made of."""
    return _NOT_LETTER.sub("", words.translate(_LEET))


# -- patterns over the word view (single spaces, lower case, no punctuation)
#
# Each rule carries trigger words: its pattern is searched only when one of
# them is among the text's words, so ordinary text costs a set lookup per rule.

Rule = tuple[str, frozenset[str], "re.Pattern[str]"]


def _words_of(text: str) -> frozenset[str]:
    return frozenset(text.split())


_IGNORE_VERB = (
    r"(?:ignore|ignoring|disregard|disregarding|forget|forgetting|bypass|override|overlook|dismiss|discard|"
    r"abandon|erase|delete|nullify|unlearn|set aside|throw out|throw away|stop following|do not follow|"
    r"dont follow|no longer follow|do not obey|dont obey|stop obeying|pay no attention to)"
)
_GAP = (
    r"(?:(?:about|all|any|the|of|these|those|that|this|and|or|whatever|entire|whole|other|such|every|single|one|its)\s)"
)
_STRONG = (
    r"(?:all|your|previous|previously|prior|preceding|above|earlier|foregoing|former|initial|original|"
    r"system|developer|hidden|given)"
)
_QUALIFIER = r"(?:(?:ai|assistant|safety|content|ethical|moral|openai|model|chatgpt|given|stated|above|mentioned)\s)"
_RULES = (
    r"(?:instructions?|prompts?|directions|directives?|rules|guidelines|guidance|programming|commands|"
    r"constraints|restrictions|training|policies|safeguards|filters|guardrails|limitations|orders|conditioning)"
)

_WORD_RULES: list[Rule] = [
    (
        IGNORE,
        _words_of(
            "ignore ignoring disregard disregarding forget forgetting bypass override overlook dismiss discard "
            "abandon erase delete nullify unlearn aside throw follow following obey obeying attention"
        ),
        re.compile(
            rf"\b{_IGNORE_VERB}\s{_GAP}{{0,3}}{_STRONG}\s{_GAP}{{0,2}}{_STRONG}?\s?{_QUALIFIER}{{0,2}}{_RULES}\b"
        ),
    ),
    (
        IGNORE,
        _words_of("ignore disregard forget"),
        re.compile(
            r"\b(?:ignore|disregard|forget)\s(?:about\s)?(?:all\s|of\s)*(?:everything|anything|all)\s"
            r"(?:(?:you\s)?(?:were|have\sbeen|ve\sbeen|got)\s(?:told|given|instructed|taught|programmed)|"
            r"(?:written\s|said\s|stated\s)?(?:above|before|prior|previously|earlier)|that\scame\sbefore|"
            r"you\sknow\sabout\s(?:rules|your\srules|ethics|guidelines))\b"
        ),
    ),
    (
        IGNORE,
        _words_of(
            "void null cancelled canceled revoked obsolete outdated deprecated valid fake false test wrong "
            "overridden replaced suspended lifted disabled"
        ),
        re.compile(
            r"\b(?:the\s|your\s|all\s)?(?:above|previous|prior|original|initial|old|system)\s"
            r"(?:instructions|prompt|rules|guidelines)\s(?:are|were|is|was|have\sbeen)\s(?:now\s)?"
            r"(?:void|null|cancelled|canceled|revoked|obsolete|outdated|deprecated|no\slonger\svalid|"
            r"fake|false|a\stest|wrong|overridden|replaced|suspended|lifted|disabled)\b"
        ),
    ),
    (
        IGNORE,
        _words_of("precedence supersede override replace developer admin administrator openai system creator"),
        re.compile(
            r"\b(?:new|updated|real|actual|override|overriding)\s(?:system\s)?(?:instructions|directive|rules)\s"
            r"(?:from\s(?:the\s)?(?:developer|admin|administrator|openai|system|your\screator)|take\sprecedence|"
            r"supersede|override|replace)\b"
        ),
    ),
    (
        REVEAL,
        _words_of(
            "system initial original hidden secret internal developer confidential pre meta base starting opening"
        ),
        re.compile(
            r"\b(?:reveal|show|print|display|output|repeat|recite|dump|leak|expose|disclose|tell\sme|give\sme|"
            r"write\sout|spell\sout|paste|echo|copy|share|list|provide|return|translate|summarize|summarise)\s"
            r"(?:(?:me|us|the|your|full|entire|complete|exact|exactly|word\sfor\sword|verbatim|original|initial|"
            r"hidden|secret|internal|confidential|underlying|actual|real|raw|first|whole|text\sof\s(?:the|your)|"
            r"contents\sof\s(?:the|your)|all\sof|of)\s){0,4}"
            r"(?:system|initial|original|hidden|secret|internal|developer|confidential|pre|meta|"
            r"base|starting|opening)\s?(?:prompt|instructions|message|directives|guidelines|configuration|rules)\b"
        ),
    ),
    (
        REVEAL,
        _words_of("your"),
        re.compile(
            r"\b(?:what\s(?:is|are|was|were|s)|whats|tell\sme|show\sme|print|reveal|repeat|list|output)\s"
            r"(?:exactly\s|all\s)?your\s(?:(?:full|exact|original|initial|hidden|secret|system|first|complete|"
            r"actual|internal|underlying)\s){0,2}(?:prompt|instructions|directives|system\smessage|rules|"
            r"programming|guidelines|configuration)\b"
        ),
    ),
    (
        REVEAL,
        _words_of("above before prior starting beginning context"),
        re.compile(
            r"\b(?:repeat|print|output|write|copy|recite|echo|show)\s(?:back\s)?(?:me\s)?(?:all\s|the\s)*"
            r"(?:words|text|everything|lines|content|sentences|tokens|message)\s"
            r"(?:(?:written\s|that\sappear\s|that\scame\s|that\sare\s)?(?:above|before|prior\sto)\s"
            r"(?:this|the\sfirst|my\sfirst|the\suser|starting|beginning)|"
            r"(?:above\s)?(?:starting|beginning)\swith\s(?:you\sare|the\sphrase|the\swords)|"
            r"(?:in|of)\s(?:your|the)\s(?:context|system)\s(?:window|prompt|message))"
        ),
    ),
    (
        REVEAL,
        _words_of("your"),
        re.compile(
            r"\b(?:text|contents?|wording|copy)\sof\syour\s(?:(?:system|initial|original|hidden|secret|full|"
            r"first)\s){0,2}(?:prompt|instructions|system\smessage|rules)\b"
        ),
    ),
    (
        REVEAL,
        _words_of("given told programmed instructed prompted"),
        re.compile(
            r"\b(?:what|which)\s(?:instructions|rules|directives|guidelines)\s(?:were|have)\syou\s(?:been\s)?"
            r"(?:given|told|programmed)|\bwhat\swere\syou\s(?:told|instructed|programmed)\s(?:to\sdo\s)?"
            r"(?:before|at\sthe\sstart|initially|by\syour\s(?:developers|creators))|\bhow\swere\syou\s"
            r"(?:instructed|prompted)\sbefore\b"
        ),
    ),
    (
        JAILBREAK,
        _words_of("anything dan stan dude mongo machiavellian confidant developer mode jailbroken"),
        re.compile(
            r"\b(?:do\sanything\snow|dan\smode|anti\sdan|better\s?dan|stan\smode|dude\smode|mongo\stom|"
            r"always\sintelligent\sand\smachiavellian|evil\sconfidant|developer\smode\s(?:enabled|output|"
            r"response)|(?:jailbreak|jailbroken|god|unrestricted|unfiltered|uncensored|chaos|evil)\smode\s"
            r"(?:enabled|activated|on)|(?:you\sare|youre|you\shave\sbeen|act\sas\s(?:a|an)?\s?|now\sa)\s?"
            r"(?:now\s)?jailbroken|jailbroken\s(?:ai|model|assistant|version|chatbot|llm|gpt|chatgpt))\b"
        ),
    ),
    (
        JAILBREAK,
        _words_of("dan"),
        re.compile(
            r"\b(?:you\sare|youre|you\swill\sbe|act\sas|acting\sas|pretend\sto\sbe|pretend\syou\sare|roleplay\sas|"
            r"role\splay\sas|play\sthe\srole\sof|from\snow\son\syou\sare|you\sare\snow|become|simulate)\s"
            r"(?:now\s)?(?:a\s|an\s)?(?:ai\s|model\s|bot\s|chatbot\s|assistant\s)?(?:called\s|named\s)?dan\b"
        ),
    ),
    (
        FAKE_TURN,
        _words_of("end system admin administrator developer root"),
        re.compile(
            r"\b(?:end\sof\s(?:the\s)?(?:system\s)?(?:prompt|instructions)\s(?:new|begin|start|system|user)|"
            r"(?:system|admin|administrator|developer|root)\s(?:override|command|message|instruction|notice)\s"
            r"(?:ignore|disregard|forget|you\smust|new|from\snow|disable|reveal|enable))"
        ),
    ),
]

# Chat-template markers, looked for in the text itself (the word view drops the punctuation).
_TEMPLATE_MARKER = re.compile(
    r"<\|im_start\|>\s*system|<\|start_header_id\|>\s*system|<<\s*sys\s*>>|<\|system\|>|"
    r"^\s*\[(?:system|admin)\]\s*:?\s*\S|^\s*###\s*(?:system|new\sinstructions?)\s*:?",
    re.IGNORECASE | re.MULTILINE,
)

# Co-occurrence: a persona cue and an "unbound" cue within one stretch of text.
_PERSONA = re.compile(
    r"\b(?:you\sare|youre|you\swill\s(?:now\s)?(?:be|act|respond|answer)|act\sas|acting\sas|pretend|roleplay|"
    r"role\splay|play\sthe\srole|imagine\syou|from\snow\son\syou|you\smust\snow|simulate|respond\sas|answer\sas|"
    r"behave\sas|stay\sin\scharacter|a\scharacter\scalled|an\sai\scalled|an\sai\snamed|a\smodel\scalled)\b"
)
_UNBOUND = re.compile(
    r"\b(?:(?:no|without|free\sof|free\sfrom|freed\sfrom|not\sbound\sby|no\slonger\sbound\sby|unbound\sby|"
    r"doesnt\shave|does\snot\shave|dont\shave|do\snot\shave|never\sfollows|ignores|breaks|bypasses|"
    r"not\srestricted\sby|not\slimited\sby|released\sfrom|outside)\s(?:any\s|all\s|the\s|your\s|its\s|of\s|"
    r"ethical\s|moral\s|content\s|safety\s|openai\s|openais\s|typical\s|usual\s|normal\s|ai\s)*"
    r"(?:restrictions|rules|limits|limitations|filters|filtering|guidelines|ethics|morals|morality|censorship|"
    r"boundaries|policies|policy|safeguards|guardrails|constraints|principles)|unfiltered|uncensored|amoral|"
    r"unrestricted|unethical|no\smorals|without\sethics|never\srefuses?|cannot\srefuse|can\snot\srefuse|"
    r"will\snot\srefuse|wont\srefuse|never\ssay\sno|not\sallowed\sto\srefuse|doesnt\scare\sabout)\b"
)
_DEVELOPER_MODE = re.compile(r"\b(?:developer|dev)\smode\b")
_ASSISTANT_CONTEXT = re.compile(
    r"\b(?:chatgpt|openai|content\spolic(?:y|ies)|polic(?:y|ies)|censor\w*|unrestricted|unfiltered|"
    r"uncensored|jailbr\w+|as\san\sai|language\smodel|simulate|pretend|act\sas|two\sresponses|normal\sresponse)\b"
)
_WINDOW = 400  # characters of the word view searched around a persona cue

# -- patterns over the squashed view (letters only): obfuscated spellings

_SQUASHED_RULES: list[Rule] = [
    (
        IGNORE,
        _words_of("ignore disregard forget bypass override"),
        re.compile(
            r"(?:ignore|disregard|forget|bypass|override)(?:about)?(?:the|of|these|those|any){0,2}"
            r"(?:(?:your|all)(?:the|of)?(?:previous|prior|preceding|above|earlier|initial|original|system)?|"
            r"(?:previous|prior|preceding|above|earlier|initial|original|system))"
            r"(?:instructions?|prompts?|directions|rules|guidelines|programming|directives?)"
        ),
    ),
    (
        IGNORE,
        _words_of("ignore disregard forget"),
        re.compile(r"(?:ignore|disregard|forget)(?:everythingabove|allabove|everythingyouweretold)"),
    ),
    (
        REVEAL,
        _words_of("reveal print show display output repeat dump leak recite disclose"),
        re.compile(
            r"(?:reveal|print|show|display|output|repeat|dump|leak|recite|disclose)"
            r"(?:me|us|the|your|full|entire|complete|exact|original|initial|hidden|secret){0,3}"
            r"(?:systemprompt|systemmessage|systeminstructions|initialprompt|initialinstructions|"
            r"originalinstructions|hiddeninstructions|hiddenprompt|secretinstructions|yourinstructions|yourprompt)"
        ),
    ),
    (
        REVEAL,
        _words_of("your"),
        re.compile(r"(?:whatis|whatare|whatwere|whats|tellme)your(?:system|initial|original|hidden)?prompt"),
    ),
    (
        JAILBREAK,
        _words_of("now mode"),
        re.compile(r"doanythingnow|developermodeenabled|youarenowdan|jailbrokenmode|danmodeenabled"),
    ),
]

# -- encoded payloads

_BASE64 = re.compile(r"[A-Za-z0-9+/\-_]{24,}={0,2}")
_HEX = re.compile(r"(?:(?:0x|\\x)?[0-9A-Fa-f]{2}[\s:,]?){16,}")
# Bounded gaps between escapes keep the search linear in the text's length.
_PERCENT = re.compile(r"(?:[A-Za-z0-9._~\-]{0,32}%[0-9A-Fa-f]{2}){4,}[A-Za-z0-9._~\-]{0,32}")
_ROT13_HINT = re.compile(r"\b(?:rot\s?13|caesar|rotate\s(?:each|every|all)\s(?:letter|character))", re.IGNORECASE)


def _decoded_texts(text: str) -> Iterator[str]:
    """Readable text hidden in encoded blobs, within the bounds above."""
    seen = 0
    for pattern, decode in ((_BASE64, _from_base64), (_HEX, _from_hex), (_PERCENT, _from_percent)):
        if pattern is _PERCENT and "%" not in text:
            continue
        for match in pattern.finditer(text):
            if seen >= MAX_BLOBS:
                return
            blob = match.group(0)[:MAX_BLOB_CHARS]
            decoded = decode(blob)
            if decoded is not None and _readable(decoded):
                seen += 1
                yield decoded
    if _ROT13_HINT.search(text):
        yield codecs.decode(text[: MAX_BLOB_CHARS * 4], "rot13")


def _from_base64(blob: str) -> str | None:
    blob = blob.rstrip("=")
    blob += "=" * (-len(blob) % 4)
    try:
        raw = base64.b64decode(blob.replace("-", "+").replace("_", "/"), validate=True)
        return raw.decode("utf-8")
    except (binascii.Error, ValueError):
        return None


def _from_hex(blob: str) -> str | None:
    digits = re.sub(r"0x|\\x|[\s:,]", "", blob)
    if len(digits) % 2:
        digits = digits[:-1]
    try:
        return bytes.fromhex(digits).decode("utf-8")
    except ValueError:
        return None


def _from_percent(blob: str) -> str | None:
    try:
        return unquote(blob, errors="strict")
    except UnicodeDecodeError:
        return None


def _readable(text: str) -> bool:
    """Mostly letters and spaces: decoded prose, not bytes that happened to decode."""
    if len(text) < 12:
        return False
    good = sum(1 for c in text if c.isalpha() or c in " ,.'\"?!:;-\n")
    return good >= 0.85 * len(text)


# -- scanning


def _word_flags(words: str) -> set[str]:
    vocabulary = set(words.split())
    flags: set[str] = set()
    for flag, triggers, pattern in _WORD_RULES:
        if flag not in flags and not triggers.isdisjoint(vocabulary) and pattern.search(words):
            flags.add(flag)
    if JAILBREAK not in flags:
        unbound = [m.start() for m in _UNBOUND.finditer(words)]
        for persona in _PERSONA.finditer(words) if unbound else ():
            # The nearest "unbound" cue at or after the persona's window start.
            i = bisect.bisect_left(unbound, persona.start() - _WINDOW)
            if i < len(unbound) and unbound[i] <= persona.end() + _WINDOW:
                flags.add(JAILBREAK)
                break
    if JAILBREAK not in flags and _DEVELOPER_MODE.search(words) and _ASSISTANT_CONTEXT.search(words):
        flags.add(JAILBREAK)
    return flags


def _squashed_flags(words: str) -> set[str]:
    squashed = _squashed(words)
    flags = _search_squashed(squashed)
    if not flags:
        # Text written backwards ("snoitcurtsni suoiverp lla erongi").
        flags = _search_squashed(squashed[::-1])
    return flags


def _search_squashed(squashed: str) -> set[str]:
    return {
        flag
        for flag, triggers, pattern in _SQUASHED_RULES
        if any(t in squashed for t in triggers) and pattern.search(squashed)
    }


def scan_text(text: str, *, decode: bool = True) -> tuple[str, ...]:
    """The patterns found in one text, sorted; ``()`` for none."""
    words = _words(text)
    flags = _word_flags(words)
    if _TEMPLATE_MARKER.search(unicodedata.normalize("NFKC", text)):
        flags.add(FAKE_TURN)
    hidden = _squashed_flags(words) - flags
    if hidden or (flags and _disguised(text)):
        flags |= hidden | {OBFUSCATED}
    if decode:
        for decoded in _decoded_texts(text):
            inner = scan_text(decoded, decode=False)
            if inner:
                flags |= {f for f in inner if f != OBFUSCATED} | {ENCODED}
    return tuple(sorted(flags))


def scan_request(chat: ChatRequest) -> Finding:
    """Scan what the person wrote: the prompt, or every user message."""
    texts: list[tuple[str, str]] = []
    if chat.prompt is not None:
        texts.append(("prompt", chat.prompt))
    for i, message in enumerate(chat.messages or ()):
        if message.role == "user":
            texts.append((f"messages[{i}].content", message.content))
    flags: set[str] = set()
    first: str | None = None
    for where, text in texts:
        found = scan_text(text)
        if found and first is None:
            first = where
        flags.update(found)
    return Finding(tuple(sorted(flags)), first)
