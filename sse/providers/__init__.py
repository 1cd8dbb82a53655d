"""Providers: the model servers llm-sse can stream from, and how one is chosen.

``LLM_SSE_PROVIDER`` names one provider or an ordered, comma-separated list
(the first is tried first; see ``sse.routing``).  ``auto`` picks at start-up:
Ollama if it answers at ``OLLAMA_URL``, else the built-in model if it is
installed (the ``local`` extra), else nothing -- and says exactly what to
install or configure.  Importing this package never imports llama.cpp.

Kinds and presets:

* ``ollama`` -- Ollama at ``OLLAMA_URL``;
* ``openai`` -- any OpenAI-compatible server at ``OPENAI_BASE_URL`` (OpenAI,
  vLLM, llama.cpp's server, LM Studio), key optional;
* ``openrouter`` -- the same kind preset for OpenRouter: its URL, a key that
  is required, and a default model that is required too (it lists hundreds);
* ``local`` -- the built-in SmolLM2-135M, in this process (``sse.providers.local``).

Configuration mistakes (a key file that cannot be read, a missing key) stop
the start with a message naming the setting, never at the first request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..routing import ModelMap
from ..secretfile import read_secret
from ..settings import Settings, parse_headers, split_list
from .base import ModelInfo, Provider, Readiness, StartupError
from .llamacpp import MODEL_NAME, missing_requirements
from .local import LocalProvider, install_hint
from .ollama import OllamaProvider
from .openai import OpenAIProvider

__all__ = ["FACTORIES", "ModelInfo", "Provider", "Readiness", "StartupError", "select_providers"]

log = logging.getLogger("llm_sse.providers")


def _ollama(settings: Settings) -> Provider:
    return OllamaProvider(
        settings.ollama_url,
        models=_model_map(settings, settings.ollama_models, settings.ollama_model),
        connect_timeout=settings.connect_timeout,
        max_line_bytes=settings.max_line_bytes,
    )


def _openai(settings: Settings) -> Provider:
    if not settings.openai_base_url.strip():
        raise StartupError("LLM_SSE_PROVIDER lists openai but OPENAI_BASE_URL is empty")
    return OpenAIProvider(
        settings.openai_base_url,
        name="openai",
        api_key=read_secret(settings.openai_api_key, settings.openai_api_key_file, "OPENAI_API_KEY"),
        models=_model_map(settings, settings.openai_models, settings.openai_model),
        headers=parse_headers(settings.openai_headers, setting="LLM_SSE_OPENAI_HEADERS"),
        connect_timeout=settings.connect_timeout,
        max_line_bytes=settings.max_line_bytes,
    )


def _openrouter(settings: Settings) -> Provider:
    key = read_secret(settings.openrouter_api_key, settings.openrouter_api_key_file, "OPENROUTER_API_KEY")
    if not key:
        raise StartupError(
            "LLM_SSE_PROVIDER lists openrouter but no key is set: "
            "set OPENROUTER_API_KEY, or OPENROUTER_API_KEY_FILE to a file holding it"
        )
    models = _model_map(settings, settings.openrouter_models, settings.openrouter_model)
    if models.resolve(None) is None:
        raise StartupError(
            "LLM_SSE_PROVIDER lists openrouter but no default model is set for requests that name none: "
            "set LLM_SSE_OPENROUTER_MODEL (e.g. openai/gpt-4o-mini) or a '*' entry in LLM_SSE_OPENROUTER_MODELS"
        )
    return OpenAIProvider(
        settings.openrouter_base_url,
        name="openrouter",
        api_key=key,
        models=models,
        headers=parse_headers(settings.openrouter_headers, setting="LLM_SSE_OPENROUTER_HEADERS"),
        dialect="openrouter",
        connect_timeout=settings.connect_timeout,
        max_line_bytes=settings.max_line_bytes,
    )


def _model_map(settings: Settings, mapping: str, own_default: str) -> ModelMap:
    return ModelMap(ModelMap.parse(mapping), default=own_default, fallback_default=settings.model)


def _local(settings: Settings) -> Provider:
    return LocalProvider(
        queue_size=settings.local_queue,
        threads=settings.local_threads,
        max_predict=settings.max_predict,
    )


FACTORIES: dict[str, Callable[[Settings], Provider]] = {
    "ollama": _ollama,
    "openai": _openai,
    "openrouter": _openrouter,
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
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise StartupError(f"provider {repeated[0]!r} is listed twice in LLM_SSE_PROVIDER")
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
        "or choose providers with LLM_SSE_PROVIDER (auto, ollama, local, openai, openrouter)."
    )
