"""For operators: liveness, readiness, metrics, and the API's OpenAPI description."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from .. import __version__, openapi
from ..clientip import is_loopback
from ..errors import ApiError
from ..metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from ..protect import API_KEYS, LIMITER
from .caller import client_of
from .keys import METRICS, PROVIDERS, REGISTRY, SETTINGS


async def healthz(request: web.Request) -> web.Response:
    """The process is up and its event loop answers."""
    app = request.app
    return web.json_response({"status": "ok", "streams": len(app[REGISTRY].streams), "limits": app[LIMITER].stats()})


async def readyz(request: web.Request) -> web.Response:
    """Ready when not shutting down and at least one provider can serve.

    Each provider's detail names where its model server is (``Ollama 0.5.1 at
    http://10.0.0.7:11434``, a refused connection's address): only a caller
    on this machine gets it; anyone else learns which providers are ready.
    """
    app = request.app
    providers = app[PROVIDERS]
    checks = await asyncio.gather(*(p.readiness() for p in providers))
    local = is_loopback(client_of(request))
    report = [
        {"provider": p.name, "ready": r.ready, **({"detail": r.detail} if local else {})}
        for p, r in zip(providers, checks, strict=True)
    ]
    draining = app[REGISTRY].draining
    ready = any(r.ready for r in checks) and not draining
    body: dict[str, Any] = {"status": "ready" if ready else "not_ready", "providers": report}
    body["limits"] = app[LIMITER].state
    if draining:
        body["detail"] = "shutting down"
    return web.json_response(body, status=200 if ready else 503)


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text exposition of the service's counters and histograms."""
    collected = request.app[METRICS]
    if not collected.available:
        raise ApiError(
            "metrics need the 'metrics' extra: pip install 'llm-sse[metrics]'", status=501, code="metrics_unavailable"
        )
    return web.Response(body=collected.render(), headers={"Content-Type": METRICS_CONTENT_TYPE})


async def openapi_document(request: web.Request) -> web.Response:
    """The API's OpenAPI 3.1 description, with this instance's real limits."""
    app = request.app
    document = openapi.build(app[SETTINGS], keys_required=app[API_KEYS].required, version=__version__)
    return web.json_response(document, headers={"Cache-Control": "no-cache"})
