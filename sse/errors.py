"""Errors that reach the client, and their wire form.

One type, ``ApiError``, crosses from anywhere in the service to HTTP: before a
stream starts it becomes a JSON body ``{"error": {"code", "message"}}`` with
its status; after, an ``event: error`` frame with the same code and message.
Upstream failures are subclasses that also say whether another provider may
be tried (only ever before the first token reached the client).
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A failure with a stable ``code`` a client can act on and a human ``message``."""

    status = 500
    code = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        field: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        self.field = field
        self.retry_after = retry_after
        #: Facts for the "request rejected" log line that the client need not see.
        self.log_fields: dict[str, Any] = {}

    def body(self) -> dict[str, Any]:
        """The JSON body of an error answered before the stream started."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            error["field"] = self.field
        if self.retry_after is not None:
            error["retry_after"] = retry_after_seconds(self.retry_after)
        return {"error": error}

    def headers(self) -> dict[str, str]:
        if self.retry_after is None:
            return {}
        return {"Retry-After": str(retry_after_seconds(self.retry_after))}

    def frame_data(self) -> dict[str, Any]:
        """The data of the ``event: error`` frame for a stream already started."""
        return {"code": self.code, "message": self.message}


# The longest wait a client is told (an hour): an upstream may ask for more, but
# a client told too long never comes back, and one told an hour is told again.
MAX_RETRY_AFTER = 3600


def retry_after_seconds(seconds: float) -> int:
    """Retry-After takes whole seconds, 1 to ``MAX_RETRY_AFTER``; never tell a client to retry at once.

    Whatever ``seconds`` is (an upstream's value may be infinite or NaN), the
    answer is a small integer: ``int()`` of an infinity would raise.
    """
    if not seconds < MAX_RETRY_AFTER:  # also NaN and infinity
        return MAX_RETRY_AFTER
    return max(1, int(seconds + 0.999))


class StartupError(RuntimeError):
    """The service cannot start as configured; the message says what to install or set (never a secret)."""


class InvalidRequest(ApiError):
    status = 400
    code = "invalid_request"


class UpstreamError(ApiError):
    """The model server failed.  ``fallback`` says another provider may be tried."""

    status = 502
    code = "upstream_error"
    fallback = False

    def __init__(self, message: str, *, fallback: bool | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        if fallback is not None:
            self.fallback = fallback


class UpstreamUnavailable(UpstreamError):
    """Could not connect (refused, DNS, reset before an answer)."""

    code = "upstream_unavailable"
    fallback = True


class UpstreamTimeout(UpstreamError):
    """Connect, first-token or idle timeout."""

    status = 504
    code = "upstream_timeout"
    fallback = True


class UpstreamDisconnected(UpstreamError):
    """The upstream closed the connection before its answer was complete."""

    code = "upstream_disconnected"
    fallback = True


class ModelNotFound(UpstreamError):
    status = 404
    code = "model_not_found"


def from_upstream_status(status: int, message: str, *, retry_after: float | None = None) -> UpstreamError:
    """Map an upstream's HTTP error status to what our client should see.

    The upstream's own message is kept (it says what went wrong) but never
    credentials: a 401/403 means *our* key was refused, which is the operator's
    problem, not the client's, so it is a 502 with a plain message.
    """
    if status == 404:
        return ModelNotFound(message or "model not found")
    if status in (401, 403):
        return UpstreamError(
            f"the model server refused this service's credentials (HTTP {status})",
            code="upstream_auth",
        )
    if status == 429:
        return UpstreamError(
            message or "the model server is rate limiting requests",
            status=429,
            code="upstream_rate_limited",
            retry_after=retry_after if retry_after is not None else 1.0,
            fallback=True,
        )
    if status in (400, 413, 422):
        return UpstreamError(
            message or f"the model server rejected the request (HTTP {status})", status=400, code="upstream_rejected"
        )
    if status == 503:
        return UpstreamError(
            message or "the model server is busy",
            status=503,
            code="upstream_busy",
            retry_after=retry_after if retry_after is not None else 1.0,
            fallback=True,
        )
    return UpstreamError(
        message or f"the model server failed (HTTP {status})",
        fallback=status >= 500,
    )
