"""Read the deploy files the way their consumers do: systemd units and settings files."""

from __future__ import annotations

import re
from pathlib import Path

from tests.deploy.nginx import REPO

DEPLOY = REPO / "deploy"
UNIT = DEPLOY / "llm-sse.service"
TEMPLATE = DEPLOY / "llm-sse@.service"
ENV_EXAMPLE = DEPLOY / "llm-sse.env"


def unit_settings(path: Path) -> dict[str, list[str]]:
    """``Key=value`` lines of a unit file, every value of a repeated key kept."""
    settings: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def environment_file(path: Path) -> dict[str, str]:
    """Parse a file as systemd's ``EnvironmentFile=`` does (for the simple syntax it allows).

    ``KEY=value`` lines; ``#`` and ``;`` start comments; a value in matching
    quotes loses them.
    """
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        key, sep, value = line.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key.strip()):
            raise ValueError(f"{path.name}: not a KEY=value line: {line!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        env[key.strip()] = value
    return env


def seconds(span: str) -> float:
    """A systemd or nginx time span like ``30s``, ``1m``, ``1min 30s`` or ``90``, in seconds."""
    units = {"": 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "ms": 0.001}
    total = 0.0
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", span.strip())
    if not parts:
        raise ValueError(f"not a time span: {span!r}")
    for number, unit in parts:
        total += float(number) * units[unit]
    return total
