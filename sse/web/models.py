"""``GET /api/models``: every provider's models, and the one a request naming none gets."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from ..errors import ApiError
from ..providers.base import Provider
from .keys import PROVIDERS


async def models(request: web.Request) -> web.Response:
    """Every provider's models, each tagged with its provider; failures listed."""
    providers = request.app[PROVIDERS]
    results = await asyncio.gather(*(p.models() for p in providers), return_exceptions=True)
    listed: list[dict[str, Any]] = []
    errors: list[dict[str, str]] = []
    for provider, result in zip(providers, results, strict=True):
        if isinstance(result, BaseException):
            if not isinstance(result, Exception):
                raise result
            message = result.message if isinstance(result, ApiError) else str(result)
            errors.append({"provider": provider.name, "message": message})
            continue
        listed.extend({"name": m.name, "provider": m.provider, **m.details} for m in result)
    if not listed and errors:
        raise ApiError(
            f"no provider could list its models: {errors[0]['message']}", status=502, code="upstream_unavailable"
        )
    return web.json_response({"models": listed, "default": await _default_model(providers, results), "errors": errors})


async def _default_model(providers: list[Provider], listings: list[Any]) -> str | None:
    """The model a request naming none gets: the first provider that answered decides.

    Each provider has its own default (and name for the service-wide one), so
    the first listed name would be wrong when the first provider is down.
    """
    for provider, listing in zip(providers, listings, strict=True):
        if isinstance(listing, BaseException):
            continue
        try:
            return await provider.resolve_model(None)
        except ApiError:
            continue
    return None
