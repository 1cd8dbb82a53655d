"""The chat page's streaming cost in Chromium: bench/page_render.mjs with a real DOM.

    .venv/bin/python bench/page_render.py [--runs 7] [--compare REV]

Serves static/ and bench/ on loopback (cross-origin isolated, so the page's
clock has microsecond resolution), opens Debian's Chromium, streams the
20 KB sample answer in 40-character pieces into static/markdown.js, and
prints the cost per update: DOM work alone, and with the layout the browser
does before it paints.  With --compare, the markdown.js of another git
revision is measured the same way in the same browser.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from aiohttp import web
from playwright.async_api import async_playwright

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cache-Control": "no-store",
}
TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".html": "text/html"}

RUN = """
async ([markdown, layout]) => {
  const { bench } = await import("/bench/page_render.mjs");
  const { MarkdownView } = await import(markdown);
  const container = document.createElement("div");
  container.className = "answer markdown";
  document.body.replaceChildren(container);
  const settle = layout ? (box) => box.getBoundingClientRect() && box.offsetHeight : () => {};
  return bench({ MarkdownView, container, now: () => performance.now(), settle });
}
"""


def app(static: Path) -> web.Application:
    async def serve(request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"] or "index.html"
        base = ROOT if path.startswith(("bench/", "tests/")) else static
        file = (base / path).resolve()
        if base not in file.parents or not file.is_file():
            raise web.HTTPNotFound()
        if path == "index.html":
            page = "<!doctype html><link rel=stylesheet href=style.css><body></body>"
            return web.Response(text=page, headers={**HEADERS, "Content-Type": "text/html"})
        kind = TYPES.get(file.suffix, "application/octet-stream")
        return web.FileResponse(file, headers={**HEADERS, "Content-Type": kind})

    application = web.Application()
    application.router.add_get("/{path:.*}", serve)
    return application


def old_static(rev: str, into: Path) -> Path:
    """static/ as it was at `rev` (its markdown.js and what it imports)."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "static"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "static"


async def measure(static: Path, runs: int) -> dict[str, Any]:
    runner = web.AppRunner(app(static), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = await browser.new_page()
            await page.goto(f"http://127.0.0.1:{port}/")
            result: dict[str, Any] = {}
            for layout in (False, True):
                samples = [await page.evaluate(RUN, ["/markdown.js", layout]) for _ in range(runs)]
                key = "with_layout" if layout else "dom_only"
                result[key] = {
                    name: round(statistics.median(s[name] for s in samples), 3)
                    for name in ("median_ms", "p95_ms", "max_ms", "mean_ms", "finish_ms")
                }
                result[key]["updates"] = samples[0]["updates"]
            result["chromium"] = browser.version
            await browser.close()
            return result
    finally:
        await runner.cleanup()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="runs of the whole answer; the median is shown")
    parser.add_argument("--compare", metavar="REV", help="also measure static/markdown.js of this git revision")
    args = parser.parse_args()
    report = {"this tree": await measure(ROOT / "static", args.runs)}
    if args.compare:
        with tempfile.TemporaryDirectory() as tmp:
            report[args.compare] = await measure(old_static(args.compare, Path(tmp)), args.runs)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
