"""One error vocabulary: every domain error is a ServiceError, rendered in one place.

The body is always ``{"error": <stable code>, "detail": <human text>, "field": <path or null>}``.
The Python client maps ``error`` back onto exception classes with the same names.
"""

from __future__ import annotations

import email.message
import re
import sys
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from fastapi.exceptions import RequestValidationError


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


# Pydantic puts the member of a failed union into ``loc``: 'str', 'constrained-int',
# "literal['deploy','latest']", 'list[str]', 'ModelName'. Our field names are snake_case.
_UNION_MEMBER = re.compile(r"[^a-z0-9_]")
_SCALAR_MEMBERS = frozenset({"str", "int", "float", "bool", "bytes", "none"})


def _is_union_member(part: int | str) -> bool:
    return isinstance(part, str) and (part in _SCALAR_MEMBERS or bool(_UNION_MEMBER.search(part)))


def _field_path(loc: tuple[int | str, ...]) -> str:
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        source, parts = parts[0], parts[1:]
        if source != "header":
            parts = [p for p in parts if not _is_union_member(p)]
    return ".".join(str(p) for p in parts) or "body"


def _message(error: dict[str, Any]) -> str:
    if error.get("type") == "json_invalid":
        # loc is ("body", <character offset>): the offset belongs in the message, not the path.
        position = tuple(error.get("loc", ()))[-1]
        reason = (error.get("ctx") or {}).get("error", "invalid JSON")
        return f"The body is not valid JSON ({reason} at character {position})."
    text = str(error.get("msg", "invalid"))
    return text.removeprefix("Value error, ")


def _error_field(error: dict[str, Any]) -> str:
    if error.get("type") == "json_invalid":
        return "body"
    return _field_path(tuple(error.get("loc", ())))


def validation_body(errors: list[dict[str, Any]]) -> dict[str, Any]:
    """Pydantic errors as our body: ``field`` is the first offending path."""
    fields = [{"field": _error_field(e), "message": _message(e)} for e in errors]
    detail = "; ".join(f"{f['field']}: {f['message']}" for f in fields) or "invalid request"
    return {
        "error": "validation_error",
        "detail": detail,
        "field": fields[0]["field"] if fields else None,
        "errors": fields,
    }


def _declared_charset(content_type: str | None) -> str | None:
    message = email.message.Message()
    message["content-type"] = content_type or ""
    charset = message.get_param("charset")
    return charset.lower() if isinstance(charset, str) else None


def _undecodable_reason(cause: BaseException | None, content_type: str | None) -> str | None:
    if isinstance(cause, UnicodeDecodeError):
        charset = _declared_charset(content_type)
        if charset not in (None, "utf-8", "utf8"):
            return f"The body is not valid UTF-8 (JSON is; charset {charset} is not supported)."
        return f"The body is not valid UTF-8 ({cause.reason} at byte {cause.start})."
    if isinstance(cause, RecursionError):
        return "The body is nested too deeply for the JSON parser."
    if isinstance(cause, ValueError) and "integer string conversion" in str(cause):
        limit = sys.get_int_max_str_digits()
        return f"The body has an integer with too many digits (at most {limit})."
    if isinstance(cause, ValueError):
        return f"The body cannot be read as JSON ({cause})."
    return None


def undecodable_body(exc: Exception, content_type: str | None) -> RequestValidationError | None:
    """The validation error (``field: "body"``) for a body the JSON parser gave up on
    without a syntax error: not UTF-8, nested beyond the parser's recursion limit, an
    integer beyond Python's 4300 digits. FastAPI answers those with a bare 400 (a syntax
    error is its 422 ``json_invalid``); None for any other exception."""
    from starlette.exceptions import HTTPException

    if not isinstance(exc, HTTPException):
        return None
    reason = _undecodable_reason(exc.__cause__, content_type)
    if reason is None:
        return None
    from fastapi.exceptions import RequestValidationError

    return RequestValidationError([{"type": "body_undecodable", "loc": ("body",), "msg": reason}])


# SQLSTATE class 22, "data exception": the database refused a value, not the request's
# shape. The schemas should refuse such values first (naming the field); this is the net.
_DATA_EXCEPTIONS = {
    "22001": "A text value is longer than the database column allows.",
    "22003": "A number is out of the range the database can store.",
    "22021": "Text contains a character the database cannot store (NUL, \\u0000).",
    "22P05": "Text contains a character the database cannot store.",
}


def refused_value(exc: BaseException) -> InvalidInput | None:
    """The 422 for a database error caused by a value it cannot store (PostgreSQL's data
    exceptions, a driver refusing to encode a parameter), or None for any other error."""
    from sqlalchemy.exc import DataError, DBAPIError

    if not isinstance(exc, DBAPIError):
        return None
    sqlstate = str(getattr(exc.orig, "sqlstate", None) or "")
    if sqlstate.startswith("22"):
        return InvalidInput(_DATA_EXCEPTIONS.get(sqlstate, "A value cannot be stored."))
    # asyncpg checks parameters before sending them (an int beyond 32 bits for an INTEGER
    # column) and raises a ValueError, adapted as an InterfaceError; other drivers: DataError.
    if isinstance(exc, DataError) or isinstance(getattr(exc.orig, "__cause__", None), ValueError):
        return InvalidInput("A value is out of the range the database can store.")
    return None


# SQLite's messages for a database that cannot be written (SQLITE_FULL, SQLITE_IOERR,
# SQLITE_READONLY, SQLITE_CANTOPEN), and PostgreSQL's SQLSTATEs for the same: 53000
# (insufficient resources), 53100 (disk full), 58030 (I/O error) and 25006 (a read-only
# transaction: a standby, or default_transaction_read_only).
_SQLITE_STORAGE_MESSAGES = (
    "database or disk is full",
    "disk i/o error",
    "attempt to write a readonly database",
    "unable to open database file",
)
_POSTGRES_STORAGE_STATES = {
    "53000": "insufficient resources",
    "53100": "the disk is full",
    "58030": "I/O error",
    "25006": "the database is read-only",
}


def storage_failure(exc: BaseException) -> str | None:
    """What keeps the database from storing anything, in a few words ("database or disk is
    full"), when ``exc`` is such a failure; None for any other error."""
    from sqlalchemy.exc import DBAPIError

    if not isinstance(exc, DBAPIError):
        return None
    sqlstate = str(getattr(exc.orig, "sqlstate", None) or "")
    if sqlstate in _POSTGRES_STORAGE_STATES:
        return _POSTGRES_STORAGE_STATES[sqlstate]
    text = str(exc.orig).lower()
    return next((m for m in _SQLITE_STORAGE_MESSAGES if m in text), None)


def storage_unavailable(cause: str) -> StorageUnavailable:
    return StorageUnavailable(
        f"The database cannot store data right now ({cause}); nothing of this request was "
        "stored. Retry later."
    )


def sqlite_locked(exc: Exception) -> bool:
    """SQLite gave up waiting for another connection's write lock (``busy_timeout``): on
    SQLite, another server process on the same file (this process's writers queue)."""
    orig = getattr(exc, "orig", None)
    return type(orig).__name__ == "OperationalError" and "database is locked" in str(orig)


def install_error_handlers(app: Any) -> None:
    """Register the one mapping from exceptions to JSON bodies (no tracebacks, ever)."""
    import logging

    from fastapi import Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from sqlalchemy.exc import DBAPIError, IntegrityError
    from sqlalchemy.exc import TimeoutError as PoolTimeout
    from starlette.exceptions import HTTPException

    from chatmodel_service.observability.metrics import count_busy_rejection

    logger = logging.getLogger("chatmodel_service")

    async def service_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ServiceError)
        if isinstance(exc, SessionBusy):
            count_busy_rejection(exc.code)
        return JSONResponse(exc.body(), status_code=exc.status_code, headers=exc.headers)

    async def request_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return JSONResponse(validation_body(list(exc.errors())), status_code=422)

    async def integrity(_: Request, exc: Exception) -> JSONResponse:
        logger.info("integrity conflict: %s", type(exc).__name__)
        body = Conflict("The write conflicts with data stored concurrently; retry.").body()
        return JSONResponse(body, status_code=409)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        if isinstance(exc.__cause__, ServiceError):
            # FastAPI turns any error raised while reading the body into a 400; the
            # body-size limit raises PayloadTooLarge there for bodies without a length.
            return await service_error(request, exc.__cause__)
        undecodable = undecodable_body(exc, request.headers.get("content-type"))
        if undecodable is not None:
            return await request_validation(request, undecodable)
        codes = {404: "not_found", 405: "method_not_allowed"}
        body = {
            "error": codes.get(exc.status_code, "http_error"),
            "detail": exc.detail,
            "field": None,
        }
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    async def database_error(request: Request, exc: Exception) -> JSONResponse:
        if sqlite_locked(exc):  # another process held SQLite's write lock too long
            return await pool_timeout(request, exc)
        cause = storage_failure(exc)
        if cause is not None:
            logger.error("the database cannot store data: %s (%s)", cause, type(exc).__name__)
            return await service_error(request, storage_unavailable(cause))
        refused = refused_value(exc)
        if refused is None:
            return await unexpected(request, exc)
        # The request carried a value no schema check caught: log where, never the value.
        sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
        logger.warning(
            "database refused a value (%s, sqlstate %s) on %s %s",
            type(exc).__name__,
            sqlstate,
            request.method,
            request.url.path,
        )
        return await service_error(request, refused)

    async def pool_timeout(request: Request, exc: Exception) -> JSONResponse:
        logger.warning("the database was busy for too long: %s", type(exc).__name__)
        busy = DatabaseBusy("The database is busy; retry shortly.")
        return await service_error(request, busy)

    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error", exc_info=exc)
        body = {
            "error": "internal_error",
            "detail": "Unexpected server error; see the server log.",
            "field": None,
        }
        return JSONResponse(body, status_code=500)

    app.add_exception_handler(ServiceError, service_error)
    app.add_exception_handler(RequestValidationError, request_validation)
    app.add_exception_handler(IntegrityError, integrity)
    app.add_exception_handler(DBAPIError, database_error)
    app.add_exception_handler(PoolTimeout, pool_timeout)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
