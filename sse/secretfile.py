"""A secret from its variable or from the file ``{NAME}_FILE`` names (not both).

A file suits secret stores (systemd credentials, Docker and Kubernetes
secrets); surrounding whitespace, such as the trailing newline, is dropped.
The secret itself never appears in a message.  Standard library only, so the
protections and the Redis client read their secrets without importing the
providers.
"""

from __future__ import annotations

from pathlib import Path

from .errors import StartupError


def read_secret(value: str, file: str, env: str) -> str:
    """The secret in ``value``, or in the file ``file`` (the setting ``{env}_FILE``); "" when neither is set."""
    if value and file:
        raise StartupError(f"set {env} or {env}_FILE, not both")
    if not file:
        return value.strip()
    try:
        secret = Path(file).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise StartupError(f"{env}_FILE: cannot read {file}: {reason}") from None
    if not secret:
        raise StartupError(f"{env}_FILE: {file} is empty")
    return secret
