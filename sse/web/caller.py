"""Who is asking: the client's address (through trusted proxies) and its API key's id."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from ..clientip import client_address
from ..protect import key_id_of
from .keys import PROXIES


def client_of(request: web.Request) -> str:
    """The client's address, through the trusted proxies."""
    return client_address(request.remote, request.headers.get("X-Forwarded-For"), request.app[PROXIES])


@dataclass(frozen=True, slots=True)
class Caller:
    client: str
    key_id: str | None

    @property
    def identity(self) -> str:
        """Whom the limits count: the key when one is given (several people behind one NAT
        each with a key), else the address."""
        return f"key:{self.key_id}" if self.key_id is not None else f"ip:{self.client}"


def caller_of(request: web.Request) -> Caller:
    return Caller(client_of(request), key_id_of(request))
