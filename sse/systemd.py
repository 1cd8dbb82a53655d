"""Tell systemd how the service is doing (``sd_notify``), with the standard library.

With ``Type=notify`` systemd considers the service started only when it says
``READY=1``, so ``systemctl start`` (and units ordered after this one) wait
until the port really accepts connections; ``STOPPING=1`` tells it a drain has
begun.  systemd passes the address of its notification socket in
``$NOTIFY_SOCKET``: a filesystem path, or ``@name`` for a socket in the
abstract namespace.  Without that variable (run by hand, under another
supervisor, in tests) every call is a no-op, so the service never depends on
systemd.

A failure to notify is logged and otherwise ignored: if READY=1 is lost,
systemd's own ``TimeoutStartSec`` ends the start and says so.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger("llm_sse.systemd")

# A datagram to a local socket does not wait for the reader unless its queue
# is full; bound that case rather than hang the event loop.
_SEND_TIMEOUT = 1.0


def socket_address(value: str) -> str | None:
    """The ``AF_UNIX`` address for a ``$NOTIFY_SOCKET`` value, None if unsupported.

    ``@name`` is a socket in the abstract namespace, which Linux spells with
    a leading NUL byte.  Other schemes (``vsock:``, used only for virtual
    machines) are not supported by this service.
    """
    if value.startswith("@") and len(value) > 1:
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    return None


def notify(*states: str, environ: Mapping[str, str] | None = None) -> bool:
    """Send ``states`` (e.g. ``"READY=1"``, ``"STATUS=..."``) in one datagram.

    Returns True when the datagram was sent, False when there is nothing to
    notify (no ``$NOTIFY_SOCKET``) or sending failed.
    """
    environ = os.environ if environ is None else environ
    value = environ.get("NOTIFY_SOCKET", "")
    if not value or not states:
        return False
    address = socket_address(value)
    if address is None:
        log.warning("cannot notify systemd", extra={"why": f"unsupported NOTIFY_SOCKET {value!r}"})
        return False
    message = "\n".join(states).encode()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.settimeout(_SEND_TIMEOUT)
            sock.connect(address)
            sock.sendall(message)
    except OSError as exc:
        log.warning("cannot notify systemd", extra={"why": str(exc), "socket": value})
        return False
    return True
