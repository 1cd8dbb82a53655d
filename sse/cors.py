"""CORS: which other web origins may call the API from a browser.

The chat page is served by this service, so it needs no CORS at all.  Other
origins (a site embedding the chat) are listed in ``LLM_SSE_CORS_ORIGINS``;
an allowed origin is echoed back exactly, with ``Vary: Origin`` so caches
keep answers for different origins apart.  ``*`` allows any origin.

Credentials (cookies) are never allowed: the API authenticates with an
``Authorization`` header, which a cross-origin ``fetch`` sends without
credentials mode, so ``Access-Control-Allow-Credentials`` is never sent -- and
the wildcard can never meet credentials.  A disallowed origin gets no CORS
headers (the browser then hides the answer from the calling page) and its
preflight gets a 403.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

# X-Resume-Token and Last-Event-ID: resuming and cancelling a resumable stream.
ALLOWED_HEADERS = "Authorization, Content-Type, X-Resume-Token, Last-Event-ID"
# Retry-After is not a CORS-safelisted response header: without this, a page on
# another origin could not read it from a 429 or 503.
EXPOSED_HEADERS = "Retry-After, WWW-Authenticate"
MAX_AGE_SECONDS = 600


def normalize_origin(value: str) -> str:
    """``scheme://host[:port]`` in lower case; ``ValueError`` for anything else."""
    value = value.strip()
    if value == "*":
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an origin like https://chat.example.com")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"{value!r} is not an origin: no path, query or user allowed")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{value!r} has a bad port") from None
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    default = {"http": 80, "https": 443}[parts.scheme]
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None and port != default else "")


class CorsPolicy:
    """The allowlist, and the headers each answer gets."""

    def __init__(self, origins: Iterable[str] = ()) -> None:
        normalized = {normalize_origin(o) for o in origins if o.strip()}
        self.any_origin = "*" in normalized
        self.origins = frozenset(normalized - {"*"})

    @property
    def enabled(self) -> bool:
        return self.any_origin or bool(self.origins)

    def allows(self, origin: str | None) -> bool:
        if not origin or not self.enabled:
            return False
        if self.any_origin:
            return True
        try:
            return normalize_origin(origin) in self.origins
        except ValueError:
            return False

    def headers(self, origin: str | None) -> dict[str, str]:
        """Headers for an actual (non-preflight) answer to a request from ``origin``."""
        if not self.enabled:
            return {}
        headers = {"Vary": "Origin"}
        if self.allows(origin):
            assert origin is not None
            headers["Access-Control-Allow-Origin"] = "*" if self.any_origin else origin
            headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
        return headers

    def preflight_headers(self, origin: str | None, methods: Iterable[str]) -> dict[str, str]:
        """Headers for the answer to an allowed origin's preflight (``OPTIONS``)."""
        headers = self.headers(origin)
        headers["Access-Control-Allow-Methods"] = ", ".join(methods)
        headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
        headers["Access-Control-Max-Age"] = str(MAX_AGE_SECONDS)
        return headers
