"""How REDIS_URL names one server, a Redis Cluster or a Sentinel-watched primary (no Redis needed)."""

from __future__ import annotations

import pytest

from sse.errors import StartupError
from sse.redis_client import redis_url
from sse.redis_topology import RedisUrlError, parse_redis_url
from sse.settings import Settings, SettingsError


def test_one_server_keeps_redis_pys_own_url() -> None:
    target = parse_redis_url("rediss://:s3cret@cache.internal:6380/2")
    assert (target.kind, target.tls) == ("single", True)
    assert target.describe() == "rediss://cache.internal:6380/2"


def test_a_cluster_url_lists_the_nodes_discovery_starts_from() -> None:
    target = parse_redis_url("redis+cluster://app:s3cret@10.0.0.1:7000,10.0.0.2")
    assert target.kind == "cluster"
    assert target.hosts == (("10.0.0.1", 7000), ("10.0.0.2", 6379))
    assert (target.username, target.password) == ("app", "s3cret")
    assert "s3cret" not in target.describe()
    assert "s3cret" not in repr(target)


def test_a_sentinel_url_names_the_sentinels_the_primary_and_the_database() -> None:
    target = parse_redis_url("rediss+sentinel://:pw@s1:26380,s2/mymaster/3?sentinel_password=spw")
    assert (target.kind, target.tls, target.service, target.db) == ("sentinel", True, "mymaster", 3)
    assert target.hosts == (("s1", 26380), ("s2", 26379))
    assert (target.password, target.sentinel_password) == ("pw", "spw")
    assert target.describe() == "rediss+sentinel://s1:26380,s2:26379/mymaster/3"


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://s1:26379",  # no primary named
        "redis+cluster://",  # no node
        "redis+cluster://n1:7000/1",  # a cluster has database 0 only
        "redis+sentinel://s1:26379/mymaster/x",
        "redis+cluster://n1:port",
        "memcached://n1",
    ],
)
def test_a_url_that_names_no_usable_redis_is_refused_at_start_up_without_its_password(url: str) -> None:
    with pytest.raises(RedisUrlError):
        parse_redis_url(url)
    with pytest.raises((StartupError, SettingsError)) as refused:
        redis_url(Settings(redis_url=url.replace("://", "://:hunter2@", 1)))
    assert "hunter2" not in str(refused.value)
