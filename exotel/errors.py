"""Typed errors raised by `exotel.client`.

Callers branch on the class, never on message text:

- `ValidationError`: our request broke a documented limit; nothing was sent.
- `AuthenticationError`: 401/403, the credentials (or the feature) are refused.
- `RejectedError`: any other 4xx; Exotel understood the request and said no.
- `RateLimitedError`: 429; `retry_after` is in seconds when Exotel said.
- `TransientError`: 5xx, or the request never left (connection refused, connect timeout).
- `OutcomeUnknownError`: a non-idempotent POST was sent but no answer came back: the call may
  exist. The dialer reconciles by its per-call token in `CustomField`; it must not blindly retry.
"""

from __future__ import annotations


class ExotelError(Exception):
    """Base of every error this package raises about Exotel's APIs."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code

    def __str__(self) -> str:
        parts = [self.message]
        if self.status is not None:
            parts.append(f"(HTTP {self.status})")
        if self.code:
            parts.append(f"[code {self.code}]")
        return " ".join(parts)


class ValidationError(ExotelError):
    """A request parameter breaks a documented limit. Raised before anything is sent."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class AuthenticationError(ExotelError):
    """401 (bad key/token) or 403 (account may not use this, e.g. feature not enabled)."""


class RejectedError(ExotelError):
    """Any other 4xx (400, 402 plan/balance, 404, 409 ...), with Exotel's message and code."""


class RateLimitedError(ExotelError):
    """429. `retry_after` is seconds to wait when Exotel sent Retry-After, else None."""

    def __init__(self, message: str, *, status: int | None = 429, code: str | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message, status=status, code=code)
        self.retry_after = retry_after


class TransientError(ExotelError):
    """5xx, or a connection error before the request was sent: safe to try again later."""


class OutcomeUnknownError(ExotelError):
    """A non-idempotent request was sent and its answer was lost: it may have taken effect."""
