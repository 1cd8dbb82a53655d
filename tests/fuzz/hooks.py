"""Checks schemathesis runs on every response, besides its own (SCHEMATHESIS_HOOKS=tests.fuzz.hooks)."""

from __future__ import annotations

import json

import schemathesis

TRACEBACK_MARKS = ("Traceback (most recent call last)", 'File "/', '.py", line ')


@schemathesis.check
def no_traceback(ctx, response, case):
    """No response ever shows a traceback or a path into the code."""
    text = response.content.decode("utf-8", "replace")
    for mark in TRACEBACK_MARKS:
        if mark in text:
            raise AssertionError(f"the response shows {mark!r}")


@schemathesis.check
def errors_are_our_json(ctx, response, case):
    """Every error is {"error": {"code", "message", ...}} as JSON, whatever was sent."""
    if response.status_code < 400:
        return
    content_type = response.headers.get("content-type", [""])[0]
    if not content_type.startswith("application/json"):
        raise AssertionError(f"a {response.status_code} came as {content_type!r}, not JSON")
    body = json.loads(response.content)
    if not (isinstance(body.get("error"), dict) and {"code", "message"} <= set(body["error"])):
        raise AssertionError(f"a {response.status_code} without an error code and message: {body!r}")
