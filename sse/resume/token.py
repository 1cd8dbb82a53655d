"""Resume tokens: what binds a resumable stream to the client that started it.

A stream's id travels in URLs and logs; the token does not.  The client that
started the stream gets the token once, in its ``meta`` frame, and must show
it to read (``GET /api/streams/{id}``) or cancel the stream.  The service keeps
only the token's SHA-256 (in memory or in Redis), so a leaked store or log
holds nothing that opens a stream, and compares in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

TOKEN_BYTES = 32  # 256 bits from the OS's CSPRNG


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def token_matches(token: str, token_hash: str) -> bool:
    """Whether ``token`` hashes to ``token_hash``, in time that does not depend on where they differ."""
    return hmac.compare_digest(hash_token(token), token_hash)
