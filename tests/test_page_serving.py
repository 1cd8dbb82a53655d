"""The chat page's files: content types, caching, the page's security headers, JSON 404s."""

from __future__ import annotations

import re

import aiohttp
import pytest

from tests.helpers import Service


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/", "text/html; charset=utf-8"),
        ("/index.html", "text/html; charset=utf-8"),
        ("/app.js", "text/javascript; charset=utf-8"),
        ("/sse.js", "text/javascript; charset=utf-8"),
        ("/markdown.js", "text/javascript; charset=utf-8"),
        ("/wording.js", "text/javascript; charset=utf-8"),
        ("/style.css", "text/css; charset=utf-8"),
        ("/favicon.svg", "image/svg+xml"),
    ],
)
async def test_page_files_are_served_with_their_content_type_and_revalidated(
    service: Service, client: aiohttp.ClientSession, path: str, content_type: str
) -> None:
    async with client.get(service.url + path) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == content_type
        assert response.headers["Cache-Control"] == "no-cache"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert await response.read()


async def test_the_page_carries_a_strict_content_security_policy(
    service: Service, client: aiohttp.ClientSession
) -> None:
    async with client.get(service.url + "/") as response:
        policy = response.headers["Content-Security-Policy"]
        html = await response.text()
    assert "script-src 'self'" in policy
    assert "style-src 'self'" in policy
    # The page lives within that policy: no inline script or style to allow.
    assert "<script>" not in html
    assert "style=" not in html
    assert "<style" not in html
    assert not re.search(r"\son[a-z]+\s*=", html), "inline event handler"


@pytest.mark.parametrize("path", ["/missing.js", "/no/such/page.html", "/.hidden", "/..%2fsetup.cfg", "/static/"])
async def test_a_missing_page_file_is_a_json_404(service: Service, client: aiohttp.ClientSession, path: str) -> None:
    async with client.get(service.url + path) as response:
        assert response.status == 404
        body = await response.json()
    assert body["error"]["code"] == "not_found"
