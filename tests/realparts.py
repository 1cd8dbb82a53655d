"""What a suite does when a real part it runs against is missing on this machine.

The suites run real parts: nginx, redis-server, Chromium, systemd-analyze, curl,
llama.cpp with a small model.  On a developer's machine a missing one skips the
suite with the reason and the fix.  In CI (``CI=true``, which ``.ci/run`` sets and
CI services set) ``make test`` has installed every one of them, so a missing part
is a broken setup: the suite fails, it never passes by skipping.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    """``CI`` set to a true value (``true``, ``1``, ``yes``), as CI services set it."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes", "on"}


def missing(part: str, install: str) -> NoReturn:
    """Skip (here) or fail (in CI) a test whose real ``part`` is not installed.

    ``install`` says how to get it, e.g. "`make system-deps` installs nginx-light".
    """
    message = f"{part} is missing: {install}"
    if in_ci():
        pytest.fail(f"{message} (CI=true: a suite that cannot run its real part fails)", pytrace=False)
    pytest.skip(message)
