"""Redis, where the service uses it: one client per URL, shared by the limits and resumable streams.

``REDIS_URL`` (or the file ``REDIS_URL_FILE`` names) is read once, here;
``RedisClients`` makes one client per URL for the application -- one server,
a Redis Cluster or a primary found through Sentinel (``redis_topology``
says how each is named) -- and closes it once, after both users.  Every key
the service writes starts with ``PREFIX`` and carries a hash tag.

Each user bounds its own calls and decides what a failure means -- the
limits answer within ``redis_timeout`` or fall back to this process, a resume
answers 503, a copy tries again.  The client's socket timeout outlasts the
longest ``XREAD BLOCK`` (a heartbeat), and its pool has no cap: a follower's
blocking read holds a connection while it waits.

Imports the ``redis`` package only when a client is made (the ``redis`` extra).
"""

from __future__ import annotations

from typing import Any

from .errors import StartupError
from .redis_topology import RedisUrlError, make_client, parse_redis_url
from .secretfile import read_secret
from .settings import REDIS_SCHEMES, Settings

PREFIX = "llm-sse:"


class MissingRedis(StartupError):
    """``REDIS_URL`` is set but the ``redis`` package is not installed."""


def redis_url(settings: Settings) -> str:
    """The configured Redis URL ("" when there is none)."""
    url = read_secret(settings.redis_url, settings.redis_url_file, "REDIS_URL")
    if url:
        if not url.startswith(REDIS_SCHEMES):
            raise StartupError(
                "REDIS_URL must start with redis://, rediss://, unix://, redis+cluster:// or redis+sentinel://"
            )
        try:
            parse_redis_url(url)
        except RedisUrlError as exc:
            raise StartupError(str(exc)) from None
    return url


def describe_url(url: str) -> str:
    """Where Redis is, without the password a URL may carry."""
    return parse_redis_url(url).describe()


class RedisClients:
    """The application's Redis clients, one per URL, made on first use and closed together."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._clients: dict[str, Any] = {}

    def get(self, url: str) -> Any:
        """The client for ``url`` (redis-py types every command as "value or awaitable": ``Any`` here)."""
        client = self._clients.get(url)
        if client is None:
            try:
                import redis  # noqa: F401 (only to say what is missing)
            except ImportError:
                raise MissingRedis(
                    "REDIS_URL is set but the redis package is missing: pip install 'llm-sse[redis]'"
                ) from None
            settings = self.settings
            client = self._clients[url] = make_client(
                parse_redis_url(url),
                socket_connect_timeout=settings.connect_timeout,
                # Longer than any XREAD BLOCK (at most a heartbeat).
                socket_timeout=settings.heartbeat + 10.0,
                health_check_interval=30,
            )
        return client

    async def close(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()
