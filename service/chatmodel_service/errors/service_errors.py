"""The error vocabulary: ``ServiceError`` and its subclasses, one per thing a caller can
get wrong or meet (a missing chat model, a busy session, a full disk...). Each names its
stable ``code``, its HTTP status and any headers it needs; ``body()`` is what the one
handler (``errors.handlers``) sends.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ServiceError(Exception):
    """Base class. ``code`` is the stable machine name; ``status_code`` the HTTP status."""

    status_code: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field

    @property
    def headers(self) -> dict[str, str] | None:
        """Response headers the error needs (``WWW-Authenticate``, ``Retry-After``)."""
        return None

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "detail": self.detail, "field": self.field}


class Unauthorized(ServiceError):
    """No API key, or one that is malformed, unknown or revoked."""

    status_code = 401
    code = "unauthorized"

    @property
    def headers(self) -> dict[str, str] | None:
        return {"WWW-Authenticate": "Bearer"}


class Forbidden(ServiceError):
    """A valid key whose scope does not allow the route (a client key on an admin route)."""

    status_code = 403
    code = "forbidden"


class RateLimited(ServiceError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str] | None:
        return {"Retry-After": str(self.retry_after)}


class NotFound(ServiceError):
    status_code = 404
    code = "not_found"


class ChatModelNotFound(NotFound):
    code = "chat_model_not_found"


class VersionNotFound(NotFound):
    code = "version_not_found"


class SessionNotFound(NotFound):
    code = "session_not_found"


class Conflict(ServiceError):
    status_code = 409
    code = "conflict"


class AlreadyExists(Conflict):
    code = "already_exists"


class StaleRelease(Conflict):
    """The caller's ``expected_release`` is no longer the chat model's current release."""

    code = "stale_release"


class NothingToRollBack(Conflict):
    code = "nothing_to_roll_back"


class SessionBusy(Conflict):
    """Another run holds the session (one run at a time per session)."""

    code = "session_busy"

    def __init__(self, detail: str, *, retry_after: int = 1) -> None:
        super().__init__(detail)
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str] | None:
        return {"Retry-After": str(self.retry_after)}


class RunInProgress(SessionBusy):
    """The first request with this Idempotency-Key is still running."""

    code = "run_in_progress"


class InvalidInput(ServiceError):
    """Well-formed JSON that breaks a domain rule (names the offending field)."""

    status_code = 422
    code = "invalid_input"


class NothingPublished(InvalidInput):
    code = "nothing_published"


class VariablesMismatch(InvalidInput):
    """A split of versions that declare different template variables: a new session's
    variables can match only some of them, so creating sessions would fail for the rest."""

    code = "variables_mismatch"


class NothingToRegenerate(Conflict):
    """A regenerate request on a session whose newest message is not a reply."""

    code = "nothing_to_regenerate"


class IdempotencyKeyReused(InvalidInput):
    """An Idempotency-Key sent again with a different request body."""

    code = "idempotency_key_reused"


class DatabaseBusy(ServiceError):
    """Every pooled database connection stayed in use for ``db_pool_timeout`` seconds, or
    (SQLite) another process held the database's write lock for its busy timeout."""

    status_code = 503
    code = "database_busy"

    @property
    def headers(self) -> dict[str, str] | None:
        return {"Retry-After": "1"}


class StorageUnavailable(ServiceError):
    """The database cannot store anything right now: its disk is full, its file or
    filesystem is read-only, or it reports an I/O error (PostgreSQL: a read-only
    transaction, as on a standby, or insufficient resources). Nothing of the request was
    stored; ``/readyz`` is not ready until a write goes through again."""

    status_code = 503
    code = "storage_unavailable"
    retry_after = 5

    @property
    def headers(self) -> dict[str, str] | None:
        return {"Retry-After": str(self.retry_after)}


class PayloadTooLarge(ServiceError):
    status_code = 413
    code = "payload_too_large"
