"""A missing file of the chat page gets the service's JSON 404, like any other error."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest

from tests.helpers import Service


@pytest.mark.parametrize("path", ["/missing.js", "/vendor", "/vendor/missing.js"])
async def test_missing_static_file_gets_a_json_404(
    make_service: Callable[..., Awaitable[Service]], client: aiohttp.ClientSession, tmp_path: Path, path: str
) -> None:
    (tmp_path / "index.html").write_text("<!doctype html>")
    (tmp_path / "vendor").mkdir()
    service = await make_service(static_dir=str(tmp_path))
    async with client.get(service.url + path) as response:
        assert response.status == 404
        assert response.headers["Content-Type"].startswith("application/json")
        assert (await response.json())["error"]["code"] == "not_found"
