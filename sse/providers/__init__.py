"""Providers: the model servers llm-sse can stream from, and how one is chosen.

``LLM_SSE_PROVIDER`` names one provider or an ordered, comma-separated list
(the first is tried first; see ``sse.routing``).  ``auto`` picks at start-up:
the built-in runtime if ``LLM_SSE_LOCAL_MODEL`` names a GGUF file (the user
chose a model), else Ollama if it answers at ``OLLAMA_URL``, else the built-in
model if it is installed (the ``local`` extra), else nothing -- and says
exactly what to install or configure.  The choice is said in one sentence a
person reads at a glance (the start-up line), the same in the JSON log.
Importing this package never imports llama.cpp.

Kinds and presets:

* ``ollama`` -- Ollama at ``OLLAMA_URL``;
* ``openai`` -- any OpenAI-compatible server at ``OPENAI_BASE_URL`` (OpenAI,
  vLLM, llama.cpp's server, LM Studio), key optional;
* ``openrouter`` -- the same kind preset for OpenRouter: its URL, a key that
  is required, and a default model that is required too (it lists hundreds);
* ``local`` -- the built-in runtime, in this process (``sse.providers.local``):
  the bundled SmolLM2-135M demo, or the GGUF file ``LLM_SSE_LOCAL_MODEL`` names.

Configuration mistakes (a key file that cannot be read, a missing key) stop
the start with a message naming the setting, never at the first request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..errors import ApiError
from ..secretfile import read_secret
from ..settings import Settings
from .base import ModelInfo, Provider, Readiness, StartupError
from .http import UpstreamLimits
from .llamacpp import MODEL_NAME, missing_requirements
from .local import LocalProvider, install_hint
from .ollama import OllamaProvider
from .openai import OpenAIProvider

__all__ = ["FACTORIES", "ModelInfo", "Provider", "Readiness", "StartupError", "select_providers"]

log = logging.getLogger("llm_sse.providers")


def upstream_limits(settings: Settings) -> UpstreamLimits:
    """What every HTTP provider bounds itself, as the settings say."""
    return UpstreamLimits(connect_timeout=settings.connect_timeout, max_line_bytes=settings.max_line_bytes)


def _ollama(settings: Settings) -> Provider:
    return OllamaProvider(settings.ollama_url, models=settings.model_maps["ollama"], limits=upstream_limits(settings))


def _openai(settings: Settings) -> Provider:
    if not settings.openai_base_url.strip():
        raise StartupError(
            f"{settings.name_of('provider')} lists openai but {settings.name_of('openai_base_url')} is empty"
        )
    return OpenAIProvider(
        settings.openai_base_url,
        name="openai",
        api_key=read_secret(settings.openai_api_key, settings.openai_api_key_file, "OPENAI_API_KEY"),
        models=settings.model_maps["openai"],
        headers=settings.upstream_headers["openai"],
        limits=upstream_limits(settings),
    )


def _openrouter(settings: Settings) -> Provider:
    key = read_secret(settings.openrouter_api_key, settings.openrouter_api_key_file, "OPENROUTER_API_KEY")
    if not key:
        raise StartupError(
            f"{settings.name_of('provider')} lists openrouter but no key is set: "
            "set OPENROUTER_API_KEY, or OPENROUTER_API_KEY_FILE to a file holding it"
        )
    models = settings.model_maps["openrouter"]
    if models.resolve(None) is None:
        raise StartupError(
            f"{settings.name_of('provider')} lists openrouter but no default model is set for requests that name "
            f"none: set {settings.name_of('openrouter_model')} (e.g. openai/gpt-4o-mini) "
            f"or a '*' entry in {settings.name_of('openrouter_models')}"
        )
    return OpenAIProvider(
        settings.openrouter_base_url,
        name="openrouter",
        api_key=key,
        models=models,
        headers=settings.upstream_headers["openrouter"],
        dialect="openrouter",
        limits=upstream_limits(settings),
    )


def _local(settings: Settings) -> Provider:
    return LocalProvider(
        queue_size=settings.local_queue,
        threads=settings.local_threads,
        max_predict=settings.max_predict,
        model_path=settings.local_model_path,
        max_ctx=settings.max_ctx,
        setting=settings.name_of("local_model"),
    )


FACTORIES: dict[str, Callable[[Settings], Provider]] = {
    "ollama": _ollama,
    "openai": _openai,
    "openrouter": _openrouter,
    "local": _local,
}


async def select_providers(settings: Settings) -> tuple[list[Provider], str]:
    """Build and start the configured providers; return them and, in a sentence, which answer and why."""
    names = settings.provider_names
    if names == ("auto",):
        return await _auto(settings)
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
    order = ", then ".join(describe(provider) for provider in providers)
    return providers, f"model servers, in order: {order}; set by {settings.name_of('provider')}"


async def _auto(settings: Settings) -> tuple[list[Provider], str]:
    if settings.local_model_path is not None:
        # A GGUF file was named: that is the model the user wants, whatever else answers.
        local = FACTORIES["local"](settings)
        await local.start()
        return [local], f"serving {describe(local)}"
    ollama = FACTORIES["ollama"](settings)
    await ollama.start()
    readiness = await ollama.readiness()
    if readiness.ready:
        return [ollama], f"{readiness.detail} answers; {await _default_model_of(ollama)}"
    await ollama.close()
    # Why it did not answer (a refused connection, a timeout) is for the JSON log, not the first line a person reads.
    log.debug("ollama is not answering", extra={"url": settings.ollama_url, "why": readiness.detail})
    missing = missing_requirements()
    if not missing:
        local = FACTORIES["local"](settings)
        await local.start()
        return [local], (
            f"no Ollama at {settings.ollama_url}, so the built-in demo model answers: {MODEL_NAME} "
            "(tiny, often wrong; docs/providers.md says how to use a real one)"
        )
    raise StartupError(
        f"no model to stream from: Ollama is not answering at {settings.ollama_url} ({readiness.detail}), "
        f"and the built-in model is not installed (missing: {', '.join(missing)}).\n"
        f"Either {install_hint()};\n"
        "or start Ollama (https://ollama.com, then 'ollama pull llama3.2'), or point OLLAMA_URL at one;\n"
        "or choose providers with LLM_SSE_PROVIDER (auto, ollama, local, openai, openrouter)."
    )


def describe(provider: Provider) -> str:
    """A provider as a start-up line names it."""
    if isinstance(provider, LocalProvider):
        return provider.description
    base_url = getattr(provider, "base_url", "")
    label = {"ollama": "Ollama", "openrouter": "OpenRouter", "openai": "the OpenAI-compatible server"}
    return f"{label.get(provider.name, provider.name)} at {base_url}" if base_url else provider.name


async def _default_model_of(provider: Provider) -> str:
    try:
        return f"requests that name no model get {await provider.resolve_model(None)}"
    except ApiError as exc:
        return f"but it has no model to answer with ({exc.message})"
