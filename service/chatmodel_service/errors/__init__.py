"""One error vocabulary: every domain error is a ServiceError, rendered in one place.

The body is always ``{"error": <stable code>, "detail": <human text>, "field": <path or null>}``.
The Python client maps ``error`` back onto exception classes with the same names.

``service_errors`` holds the vocabulary, ``validation`` the body of a request FastAPI
could not take, ``database`` what a database error means to the caller, and ``handlers``
the one handler that renders them all. Import them from here.
"""

from chatmodel_service.errors.database import (
    refused_value,
    sqlite_locked,
    storage_failure,
    storage_unavailable,
)
from chatmodel_service.errors.handlers import install_error_handlers
from chatmodel_service.errors.service_errors import (
    AlreadyExists,
    ChatModelNotFound,
    Conflict,
    DatabaseBusy,
    Forbidden,
    IdempotencyKeyReused,
    InvalidInput,
    NotFound,
    NothingPublished,
    NothingToRegenerate,
    NothingToRollBack,
    PayloadTooLarge,
    RateLimited,
    RunInProgress,
    ServiceError,
    SessionBusy,
    SessionNotFound,
    StaleRelease,
    StorageUnavailable,
    Unauthorized,
    VariablesMismatch,
    VersionNotFound,
)
from chatmodel_service.errors.validation import undecodable_body, validation_body

__all__ = [
    "AlreadyExists",
    "ChatModelNotFound",
    "Conflict",
    "DatabaseBusy",
    "Forbidden",
    "IdempotencyKeyReused",
    "InvalidInput",
    "NotFound",
    "NothingPublished",
    "NothingToRegenerate",
    "NothingToRollBack",
    "PayloadTooLarge",
    "RateLimited",
    "RunInProgress",
    "ServiceError",
    "SessionBusy",
    "SessionNotFound",
    "StaleRelease",
    "StorageUnavailable",
    "Unauthorized",
    "VariablesMismatch",
    "VersionNotFound",
    "install_error_handlers",
    "refused_value",
    "sqlite_locked",
    "storage_failure",
    "storage_unavailable",
    "undecodable_body",
    "validation_body",
]
