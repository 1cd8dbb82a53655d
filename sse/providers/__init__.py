"""Providers: the model servers llm-sse can stream from, and how one is chosen.

``LLM_SSE_PROVIDER`` names one provider or an ordered, comma-separated list
(the first is tried first; see ``sse.routing``).  ``auto`` picks at start-up:
Ollama if it answers at ``OLLAMA_URL``, else the built-in model if it is
installed (the ``local`` extra), else nothing -- and says exactly what to
install or configure.  Importing this package never imports llama.cpp.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..settings import Settings, split_list
from .base import ModelInfo, Provider, Readiness, StartupError
from .llamacpp import MODEL_NAME, missing_requirements
from .local import LocalProvider, install_hint
from .ollama import OllamaProvider

__all__ = ["FACTORIES", "ModelInfo", "Provider", "Readiness", "StartupError", "select_providers"]

log = logging.getLogger("llm_sse.providers")


def _ollama(settings: Settings) -> Provider:
    return OllamaProvider(
        settings.ollama_url,
        default_model=settings.model,
        connect_timeout=settings.connect_timeout,
        max_line_bytes=settings.max_line_bytes,
    )


def _local(settings: Settings) -> Provider:
    return LocalProvider(
        queue_size=settings.local_queue,
        threads=settings.local_threads,
        max_predict=settings.max_predict,
    )


FACTORIES: dict[str, Callable[[Settings], Provider]] = {
    "ollama": _ollama,
    "local": _local,
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
    started: list[Provider] = []
    try:
        for provider in providers:
            await provider.start()
            started.append(provider)
    except BaseException:
        for provider in started:
            await provider.close()
        raise
    return providers, f"configured: LLM_SSE_PROVIDER={settings.provider}"


async def _auto(settings: Settings) -> tuple[list[Provider], str]:
    ollama = FACTORIES["ollama"](settings)
    await ollama.start()
    readiness = await ollama.readiness()
    if readiness.ready:
        return [ollama], f"auto: {readiness.detail} answers"
    await ollama.close()
    ollama_down = f"Ollama is not answering at {settings.ollama_url} ({readiness.detail})"
    missing = missing_requirements()
    if not missing:
        local = FACTORIES["local"](settings)
        await local.start()
        return [local], f"auto: {ollama_down}; serving the built-in model {MODEL_NAME}"
    raise StartupError(
        f"no model to stream from: {ollama_down}, and the built-in model is not installed "
        f"(missing: {', '.join(missing)}).\n"
        f"Either {install_hint()};\n"
        "or start Ollama (https://ollama.com, then 'ollama pull llama3.2'), or point OLLAMA_URL at one;\n"
        "or choose a provider with LLM_SSE_PROVIDER (auto, ollama, local)."
    )
