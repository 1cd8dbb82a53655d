"""The application's shared state, by typed key: set once in ``app.create_app``, read by handlers."""

from __future__ import annotations

from aiohttp import web

from ..metrics import Metrics
from ..providers.base import Provider
from ..redis_client import RedisClients
from ..resume.memory import ResumableStreams
from ..routing import ProviderRouter
from ..settings import Settings
from ..stream.registry import StreamRegistry
from ..streamlog import StreamObserver

SETTINGS = web.AppKey("settings", Settings)
PROVIDERS = web.AppKey[list[Provider]]("providers")
ROUTER = web.AppKey[ProviderRouter[Provider]]("router")
REGISTRY = web.AppKey("registry", StreamRegistry)
OBSERVERS = web.AppKey[list[StreamObserver]]("observers")
SELECTION = web.AppKey("selection", str)
PROXIES = web.AppKey("proxies", tuple)
METRICS = web.AppKey[Metrics]("metrics")
RESUMABLE = web.AppKey("resumable", ResumableStreams)
REDIS = web.AppKey("redis", RedisClients)
