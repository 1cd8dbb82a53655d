"""How an operator names Redis -- one server, a Cluster, or a primary watched by Sentinel -- and its client.

``REDIS_URL`` takes one of:

* ``redis://[user:password@]host:port/db``, ``rediss://...`` (TLS), ``unix:///path?db=0``:
  one server (redis-py's own URL syntax);
* ``redis+cluster://[user:password@]host:port[,host:port...]`` (``rediss+cluster://``
  for TLS): a Redis Cluster; the nodes listed are only where discovery starts
  (one is enough, more survive one being down at start-up).  No database
  number: a cluster has only database 0;
* ``redis+sentinel://[user:password@]host:port[,host:port...]/service[/db]``
  (``rediss+sentinel://``): the primary that the Sentinels at those addresses
  (port 26379 by default) know as ``service``, found again after a failover.
  The credentials are the data nodes'; a Sentinel that wants a password of
  its own gets it from ``?sentinel_password=...``.

Every key the service writes carries a hash tag (``{...}``), so the keys one
script or transaction touches share one hash slot: the whole design works on
a Cluster unchanged.  The clients are redis-py's: ``Redis``, ``RedisCluster``
and ``Sentinel(...).master_for(...)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

SINGLE_SCHEMES = ("redis", "rediss", "unix")
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
SCHEMES = SINGLE_SCHEMES + CLUSTER_SCHEMES + SENTINEL_SCHEMES
URL_PREFIXES = tuple(f"{scheme}://" for scheme in SCHEMES)


class RedisUrlError(ValueError):
    """A ``REDIS_URL`` that names no Redis this service can use (the message never repeats a password)."""


@dataclass(frozen=True)
class RedisTarget:
    """A parsed ``REDIS_URL``: which kind, where, and how to log in."""

    kind: str  # "single", "cluster" or "sentinel"
    url: str
    tls: bool = False
    hosts: tuple[tuple[str, int], ...] = ()
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    service: str = ""
    db: int = 0
    sentinel_password: str | None = field(default=None, repr=False)

    def describe(self) -> str:
        """Where Redis is, for logs: never a password."""
        if self.kind == "single":
            parts = urlsplit(self.url)
            if parts.scheme == "unix":
                return f"unix:{parts.path}"
            return f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}{parts.path}"
        scheme = urlsplit(self.url).scheme
        where = ",".join(f"{host}:{port}" for host, port in self.hosts)
        return f"{scheme}://{where}" + (f"/{self.service}/{self.db}" if self.kind == "sentinel" else "")


def parse_redis_url(url: str) -> RedisTarget:
    """Read ``REDIS_URL``; ``RedisUrlError`` (without the password) when it cannot be used."""
    scheme = url.partition("://")[0].lower()
    if scheme not in SCHEMES:
        raise RedisUrlError(
            "REDIS_URL must start with redis://, rediss://, unix://, redis+cluster://, rediss+cluster://, "
            "redis+sentinel:// or rediss+sentinel://"
        )
    if scheme in SINGLE_SCHEMES:
        return RedisTarget("single", url, tls=scheme == "rediss")
    rest = url.partition("://")[2]
    location, _, query = rest.partition("?")
    netloc, _, path = location.partition("/")
    userinfo, _, hostlist = netloc.rpartition("@")
    username = password = None
    if userinfo:
        user, has_password, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if has_password else None
    default_port = 26379 if scheme in SENTINEL_SCHEMES else 6379
    hosts = tuple(_host_port(item, default_port) for item in hostlist.split(",") if item)
    if not hosts:
        raise RedisUrlError(f"REDIS_URL ({scheme}://) names no host")
    options = parse_qs(query)
    tls = scheme.startswith("rediss")
    if scheme in CLUSTER_SCHEMES:
        if path.strip("/") not in ("", "0"):
            raise RedisUrlError("REDIS_URL: a Redis Cluster has only database 0")
        return RedisTarget("cluster", url, tls, hosts, username, password)
    service, _, db = path.strip("/").partition("/")
    if not service:
        raise RedisUrlError("REDIS_URL (redis+sentinel://) must name the primary: redis+sentinel://host:26379/name")
    if db and not db.isdigit():
        raise RedisUrlError("REDIS_URL: the database after the primary's name must be a number")
    sentinel_password = options.get("sentinel_password", [None])[0]
    return RedisTarget(
        "sentinel", url, tls, hosts, username, password, unquote(service), int(db or 0), sentinel_password
    )


def _host_port(item: str, default_port: int) -> tuple[str, int]:
    if item.startswith("["):  # [IPv6]:port
        host, _, port = item[1:].partition("]")
        port = port.removeprefix(":")
    else:
        host, _, port = item.rpartition(":") if ":" in item else (item, "", "")
    if not host or (port and not port.isdigit()):
        raise RedisUrlError("REDIS_URL: every node must be host or host:port")
    return host, int(port) if port else default_port


def make_client(target: RedisTarget, **options: Any) -> Any:
    """The redis-py client for ``target``; ``options`` are connection options (timeouts, retry, pool size).

    Imports redis-py here, so the service runs without the ``redis`` extra until a URL is set.
    """
    if target.kind == "single":
        from redis.asyncio import Redis

        return Redis.from_url(target.url, **options)
    auth: dict[str, Any] = {"username": target.username, "password": target.password}
    if target.kind == "cluster":
        from redis.asyncio.cluster import ClusterNode, RedisCluster

        options.pop("health_check_interval", None)  # per connection in a cluster client: not an option there
        max_connections = options.pop("max_connections", None)
        return RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in target.hosts],
            ssl=target.tls,
            **auth,
            **({"max_connections": max_connections} if max_connections else {}),
            **options,
        )
    from redis.asyncio.sentinel import Sentinel

    sentinel_options: dict[str, Any] = {
        key: options[key] for key in ("socket_timeout", "socket_connect_timeout") if key in options
    }
    if target.sentinel_password:
        sentinel_options["password"] = target.sentinel_password
    sentinel = Sentinel(list(target.hosts), sentinel_kwargs=sentinel_options, **options)  # type: ignore[no-untyped-call]
    return sentinel.master_for(target.service, ssl=target.tls, db=target.db, **auth)
