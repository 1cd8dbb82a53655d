"""Optional API keys: ``Authorization: Bearer <key>``.

Keys come from ``LLM_SSE_API_KEYS`` (comma-separated) and/or a key file
(``LLM_SSE_API_KEYS_FILE``: one key per line, ``#`` starts a comment).  They
are held only as SHA-256 digests.  A presented key is hashed and compared
with *every* stored digest with ``hmac.compare_digest``, so neither the time
taken nor an early exit says how close a guess was, or which key matched
first.  Comparing digests also makes the keys' lengths irrelevant.

A key is identified in logs by ``key_id``: the first 8 hex digits of its
SHA-256 -- enough to tell a handful of keys apart, useless for recovering
the key.  The key itself is never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable

# RFC 6750's b64token: what may follow "Bearer " in the header.
_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_BEARER = re.compile(r"Bearer[ ]+(\S+)[ ]*", re.IGNORECASE)
MIN_KEY_LENGTH = 16
MAX_KEY_LENGTH = 512


class BadKey(ValueError):
    """A configured key cannot be used (too short, or not sendable in the header)."""


def key_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:8]


def parse_key_file(text: str) -> list[str]:
    """Keys of a key file: one per line; blank lines and ``#`` comments ignored."""
    keys = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            keys.append(line)
    return keys


def check_key(key: str, where: str) -> str:
    """``key`` if it is usable; else an error that says why without showing it."""
    if not MIN_KEY_LENGTH <= len(key) <= MAX_KEY_LENGTH:
        raise BadKey(
            f"{where}: a key has {len(key)} characters; keys need {MIN_KEY_LENGTH} to {MAX_KEY_LENGTH} "
            f"(e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    if not _TOKEN.fullmatch(key):
        raise BadKey(
            f"{where}: the key with id {key_id(key)} has characters a Bearer token cannot carry "
            "(use letters, digits and - . _ ~ + /)"
        )
    return key


class ApiKeys:
    """The accepted keys, as digests.  Empty: no key is required."""

    def __init__(self, keys: Iterable[str] = ()) -> None:
        self._digests = [hashlib.sha256(k.encode()).digest() for k in dict.fromkeys(keys)]

    @property
    def required(self) -> bool:
        return bool(self._digests)

    def __len__(self) -> int:
        return len(self._digests)

    def __repr__(self) -> str:
        return f"ApiKeys({len(self)} keys)"

    def check(self, authorization: str | None) -> str | None:
        """The key id of a valid ``Authorization`` header value, else None."""
        if authorization is None:
            return None
        match = _BEARER.fullmatch(authorization)
        if match is None:
            return None
        presented = match.group(1)
        if len(presented) > MAX_KEY_LENGTH or not _TOKEN.fullmatch(presented):
            return None
        digest = hashlib.sha256(presented.encode()).digest()
        found = False
        for stored in self._digests:  # no early exit: every key is compared
            found |= hmac.compare_digest(digest, stored)
        return digest.hex()[:8] if found else None
