"""The provider order and its cool-down (a simple circuit breaker)."""

from __future__ import annotations

import pytest

from sse.providers.ollama import OllamaProvider
from sse.routing import ProviderRouter
from sse.server import ROUTER
from sse.settings import Settings
from tests.helpers import start_service


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_failed_provider_rests_for_the_cooldown_then_returns():
    clock = Clock()
    router = ProviderRouter(["a", "b"], cooldown=30, clock=clock)
    assert router.candidates() == ["a", "b"]
    router.failed("a")
    assert router.candidates() == ["b"]
    clock.now += 29.9
    assert router.candidates() == ["b"]
    clock.now += 0.2
    assert router.candidates() == ["a", "b"]


def test_success_ends_the_rest_at_once():
    router = ProviderRouter(["a", "b"], cooldown=30, clock=Clock())
    router.failed("a")
    router.succeeded("a")
    assert router.candidates() == ["a", "b"]


def test_when_every_provider_rests_all_are_tried_in_order():
    router = ProviderRouter(["a", "b"], cooldown=30, clock=Clock())
    router.failed("a")
    router.failed("b")
    assert router.candidates() == ["a", "b"]


def test_a_router_needs_a_provider():
    with pytest.raises(ValueError, match="at least one"):
        ProviderRouter([])


async def test_a_clients_unknown_model_does_not_put_the_provider_to_rest(fake_ollama, client):
    provider = OllamaProvider(fake_ollama.url)
    service = await start_service(Settings(port=0), [provider])
    try:
        router = service.app[ROUTER]
        router.cooldown = 60
        async with client.post(service.url + "/api/chat", json={"prompt": "x", "model": "nope"}) as response:
            assert response.status == 404
        assert not router.resting(provider)
    finally:
        await service.stop()
