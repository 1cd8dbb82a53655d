"""Who the client is, as seen through trusted reverse proxies.

``X-Forwarded-For`` is a list each proxy appends to, so only its right end is
trustworthy, and only as far as the proxies we know: walk it from the right,
skipping addresses of trusted proxies, and the first address that is not one
is the client.  A header from anyone else is ignored -- a client cannot choose
its own rate-limit identity by sending one.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """Parse addresses or CIDR blocks (``127.0.0.1``, ``10.0.0.0/8``, ``::1``)."""
    return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in values if v.strip())


def is_trusted(address: str, proxies: tuple[Network, ...]) -> bool:
    """Is ``address`` (a TCP peer) one of the trusted proxies?"""
    return _trusted(address, proxies)


def is_loopback(address: str) -> bool:
    """Is ``address`` this machine's own (``127.0.0.0/8``, ``::1``)?"""
    ip = _ip(address)
    return ip is not None and ip.is_loopback


def _trusted(address: str, proxies: tuple[Network, ...]) -> bool:
    ip = _ip(address)
    return ip is not None and any(ip in net for net in proxies)


def _ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """``address`` as an IP (an IPv4-mapped IPv6 address as its IPv4 one); None if it is not one."""
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def client_address(peer: str | None, forwarded_for: str | None, proxies: tuple[Network, ...]) -> str:
    """The client's address given the TCP peer and its X-Forwarded-For header."""
    peer = peer or "unknown"
    if not forwarded_for or not proxies or not _trusted(peer, proxies):
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, proxies):
            return hop if _is_ip(hop) else peer
    return hops[0] if hops and _is_ip(hops[0]) else peer


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value.strip("[]"))
    except ValueError:
        return False
    return True
