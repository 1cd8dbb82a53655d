"""Providers: the model servers llm-sse can stream from, and how one is chosen.

``LLM_SSE_PROVIDER`` names one provider or an ordered, comma-separated list
(the first is tried first; see ``sse.routing``).  ``auto`` picks at start-up:
Ollama if it answers at ``OLLAMA_URL``, else nothing -- and says exactly what
to install or configure.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..settings import Settings, split_list
from .base import ModelInfo, Provider, Readiness
from .ollama import OllamaProvider

__all__ = ["FACTORIES", "ModelInfo", "Provider", "Readiness", "StartupError", "select_providers"]

log = logging.getLogger("llm_sse.providers")


class StartupError(RuntimeError):
    """No provider can serve; the message says what to do about it."""


def _ollama(settings: Settings) -> Provider:
    return OllamaProvider(
        settings.ollama_url,
        default_model=settings.model,
        connect_timeout=settings.connect_timeout,
        max_line_bytes=settings.max_line_bytes,
    )


FACTORIES: dict[str, Callable[[Settings], Provider]] = {
    "ollama": _ollama,
}


async def select_providers(settings: Settings) -> tuple[list[Provider], str]:
    """Build and start the configured providers; return them and why they were chosen."""
    names = split_list(settings.provider.lower()) or ("auto",)
    if names == ("auto",):
        return await _auto(settings)
    unknown = [n for n in names if n not in FACTORIES]
    if unknown:
        raise StartupError(
            f"unknown provider {unknown[0]!r} in LLM_SSE_PROVIDER; known: auto, {', '.join(sorted(FACTORIES))}"
        )
    providers = [FACTORIES[name](settings) for name in names]
    for provider in providers:
        await provider.start()
    return providers, f"configured: LLM_SSE_PROVIDER={settings.provider}"


async def _auto(settings: Settings) -> tuple[list[Provider], str]:
    ollama = FACTORIES["ollama"](settings)
    await ollama.start()
    readiness = await ollama.readiness()
    if readiness.ready:
        return [ollama], f"auto: {readiness.detail}"
    await ollama.close()
    raise StartupError(
        f"no model server to stream from: Ollama is not answering at {settings.ollama_url} ({readiness.detail}).\n"
        "Start Ollama (https://ollama.com, then 'ollama pull llama3.2'), or point OLLAMA_URL at one, "
        "or set LLM_SSE_PROVIDER explicitly."
    )
