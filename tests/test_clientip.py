"""X-Forwarded-For is believed only from trusted proxies, and only from the right."""

from __future__ import annotations

import pytest

from sse.clientip import client_address, parse_networks

PROXIES = parse_networks(["127.0.0.1", "10.0.0.0/8", "::1"])


@pytest.mark.parametrize(
    ("peer", "header", "expected"),
    [
        ("203.0.113.9", None, "203.0.113.9"),
        ("203.0.113.9", "1.2.3.4", "203.0.113.9"),  # not from a proxy: ignored
        ("127.0.0.1", "198.51.100.7", "198.51.100.7"),
        ("127.0.0.1", "6.6.6.6, 198.51.100.7", "198.51.100.7"),  # a client cannot choose its identity
        ("127.0.0.1", "198.51.100.7, 10.1.2.3", "198.51.100.7"),  # skip trusted hops
        ("127.0.0.1", "10.1.2.3, 10.4.5.6", "10.1.2.3"),  # all trusted: the leftmost
        ("127.0.0.1", "not-an-ip", "127.0.0.1"),
        ("::1", "2001:db8::1", "2001:db8::1"),
        ("::ffff:127.0.0.1", "198.51.100.7", "198.51.100.7"),
        ("127.0.0.1", "", "127.0.0.1"),
        (None, None, "unknown"),
    ],
)
def test_client_address(peer, header, expected):
    assert client_address(peer, header, PROXIES) == expected


def test_without_trusted_proxies_the_header_is_ignored():
    assert client_address("127.0.0.1", "198.51.100.7", ()) == "127.0.0.1"


async def test_the_stream_log_uses_the_forwarded_client_from_a_trusted_proxy(make_service, client, caplog):
    caplog.set_level("INFO")
    service = await make_service(trusted_proxies="127.0.0.1")
    headers = {"X-Forwarded-For": "6.6.6.6, 198.51.100.7"}
    async with client.post(service.url + "/api/chat", json={"prompt": "x"}, headers=headers) as response:
        await response.read()
    (line,) = [r.fields for r in caplog.records if r.name == "llm_sse.stream"]
    assert line["client"] == "198.51.100.7"
