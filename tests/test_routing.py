"""The provider order, its cool-down, and per-provider model names (sse/routing.py)."""

from __future__ import annotations

import pytest

from sse.routing import ModelMap, ProviderRouter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_failed_provider_rests_for_the_cooldown_then_returns() -> None:
    clock = Clock()
    router = ProviderRouter(["ollama", "openrouter"], cooldown=30.0, clock=clock)
    router.failed("ollama")
    assert router.candidates() == ["openrouter"]
    assert router.resting("ollama")
    clock.now += 29.9
    assert router.candidates() == ["openrouter"]
    clock.now += 0.1
    assert router.candidates() == ["ollama", "openrouter"]
    assert not router.resting("ollama")


def test_when_every_provider_rests_all_are_tried_in_order() -> None:
    clock = Clock()
    router = ProviderRouter(["ollama", "openrouter"], cooldown=30.0, clock=clock)
    router.failed("openrouter")
    router.failed("ollama")
    assert router.candidates() == ["ollama", "openrouter"]


def test_success_ends_the_rest_at_once() -> None:
    router = ProviderRouter(["ollama", "openrouter"], cooldown=30.0, clock=Clock())
    router.failed("ollama")
    router.succeeded("ollama")
    assert router.candidates() == ["ollama", "openrouter"]


def test_zero_cooldown_never_rests() -> None:
    router = ProviderRouter(["ollama", "openrouter"], cooldown=0.0, clock=Clock())
    router.failed("ollama")
    assert router.candidates() == ["ollama", "openrouter"]


def test_model_map_resolution_order() -> None:
    models = ModelMap(
        ModelMap.parse("llama3.2=meta-llama/llama-3.2-3b-instruct, *=openai/gpt-4o-mini"),
        default="anthropic/claude-3.5-haiku",
        fallback_default="llama3.2",
    )
    assert models.resolve("llama3.2") == "meta-llama/llama-3.2-3b-instruct"
    assert models.resolve("qwen3:4b") == "openai/gpt-4o-mini"  # '*' catches the rest
    assert models.resolve(None) == "anthropic/claude-3.5-haiku"  # the provider's own default, unmapped


def test_model_map_without_a_catch_all_passes_names_through() -> None:
    models = ModelMap(ModelMap.parse("a=b"), fallback_default="a")
    assert models.resolve("c") == "c"
    assert models.resolve(None) == "b"  # the service-wide default is mapped like a requested name
    assert ModelMap().resolve(None) is None  # the provider's first listed model


@pytest.mark.parametrize(
    ("text", "fault"), [("llama3.2", "not of the form"), ("=x", "not of the form"), ("a=b,a=c", "twice")]
)
def test_malformed_model_maps_are_refused(text: str, fault: str) -> None:
    with pytest.raises(ValueError, match=fault):
        ModelMap.parse(text)
