"""The chat page: ``GET /`` and its files from the static folder, with the headers a page needs."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import web

from ..errors import ApiError
from .keys import SETTINGS

# The page's own file types, set explicitly: aiohttp's FileResponse guesses
# with a private MimeTypes table (so mimetypes.add_type does not reach it),
# and Python 3.11's table still says application/javascript.  Text types carry
# their charset so nothing depends on the browser's guess.
STATIC_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
    ".txt": "text/plain; charset=utf-8",
}

PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Model output is untrusted: even if some of it slipped into the DOM as
    # markup, no inline script or foreign resource could run or load.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
}


async def static_file(request: web.Request) -> web.StreamResponse:
    """Serve the chat page and its files from the static folder.

    HTML is revalidated on every load (``no-cache``) so a deploy shows at once;
    files under ``vendor/`` carry their version in their path and are cached
    for a year.
    """
    relative = request.match_info.get("path", "") or "index.html"
    parts = relative.split("/")
    if any(not part or part.startswith(".") for part in parts):
        # No "..", no hidden files, no empty segments: the path stays inside.
        raise ApiError(f"no such page: /{relative}", status=404, code="not_found")
    path = Path(request.app[SETTINGS].static_dir, *parts)
    # Checked here, not left to FileResponse: its 404 would bypass the error boundary.
    if not await asyncio.to_thread(path.is_file):
        raise ApiError(f"no such page: /{relative}", status=404, code="not_found")
    headers = dict(PAGE_HEADERS) if path.suffix == ".html" else {"X-Content-Type-Options": "nosniff"}
    if path.suffix in STATIC_TYPES:
        headers["Content-Type"] = STATIC_TYPES[path.suffix]
    if relative.startswith("vendor/"):
        headers["Cache-Control"] = "public, max-age=31536000, immutable"
    else:
        headers.setdefault("Cache-Control", "no-cache")
    return web.FileResponse(path, headers=headers)
