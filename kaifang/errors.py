"""Errors the service layer raises; the web layer maps each to an HTTP status and a Chinese message."""

from __future__ import annotations


class ServiceError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


class InvalidInput(ServiceError):
    status = 422
    code = "invalid"


class NotAuthenticated(ServiceError):
    status = 401
    code = "not_authenticated"


class PermissionDenied(ServiceError):
    status = 403
    code = "forbidden"


class EmailNotVerified(PermissionDenied):
    """The password was right but the address is unverified; `email` is where to resend the link."""

    code = "email_not_verified"

    def __init__(self, message: str, email: str) -> None:
        super().__init__(message)
        self.email = email


class NotFound(ServiceError):
    status = 404
    code = "not_found"


class Conflict(ServiceError):
    status = 409
    code = "conflict"


class Locked(ServiceError):
    status = 423
    code = "locked"


class RateLimited(ServiceError):
    """Too many requests; `retry_after` (seconds) becomes the response's `Retry-After` header."""

    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
