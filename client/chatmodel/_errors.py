"""Exceptions. Their names mirror the server's ``error`` codes.

::

    ChatModelError
    ├── APIConnectionError          the server could not be reached (nothing came back)
    │   └── APITimeoutError         ... or did not answer within the timeout
    └── APIError                    the server answered with an error (or an unreadable body)
        ├── NotFoundError           404 not_found
        │   ├── ChatModelNotFound   404 chat_model_not_found
        │   ├── VersionNotFound     404 version_not_found
        │   └── SessionNotFound     404 session_not_found
        ├── ConflictError           409 conflict
        │   └── AlreadyExists       409 already_exists
        ├── InvalidInputError       422 invalid_input (and any other 400/422)
        │   ├── ValidationError     422 validation_error
        │   └── NothingPublished    422 nothing_published
        └── PayloadTooLarge         413 payload_too_large

A code this client does not know is mapped by its status (404, 409, 400/422, 413); any
other status is a plain ``APIError``. ``run``/``arun`` never raise these: they return them
as an ``LLMResponse`` (or stream chunk) with ``error=True``.
"""

from __future__ import annotations

from typing import Any


class ChatModelError(Exception):
    """Base class of every exception this package raises."""


class APIConnectionError(ChatModelError):
    """The request did not get an answer: connection refused or dropped, DNS, TLS, ..."""

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url


class APITimeoutError(APIConnectionError):
    """No answer within the timeout."""


class APIError(ChatModelError):
    """The server answered with an error body ``{"error": code, "detail", "field"}``."""

    def __init__(
        self,
        status_code: int,
        code: str,
        detail: str,
        field: str | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status_code} {code}: {detail}")
        self.status_code = status_code
        self.code = code
        self.detail = detail
        self.field = field
        self.body = body if body is not None else {}


class NotFoundError(APIError):
    pass


class ChatModelNotFound(NotFoundError):
    pass


class VersionNotFound(NotFoundError):
    pass


class SessionNotFound(NotFoundError):
    pass


class ConflictError(APIError):
    pass


class AlreadyExists(ConflictError):
    pass


class InvalidInputError(APIError):
    pass


class ValidationError(InvalidInputError):
    """The request broke the wire contract; ``field`` is the first offending path."""


class NothingPublished(InvalidInputError):
    pass


class PayloadTooLarge(APIError):
    pass


ERRORS_BY_CODE: dict[str, type[APIError]] = {
    "not_found": NotFoundError,
    "chat_model_not_found": ChatModelNotFound,
    "version_not_found": VersionNotFound,
    "session_not_found": SessionNotFound,
    "conflict": ConflictError,
    "already_exists": AlreadyExists,
    "invalid_input": InvalidInputError,
    "validation_error": ValidationError,
    "nothing_published": NothingPublished,
    "payload_too_large": PayloadTooLarge,
}

ERRORS_BY_STATUS: dict[int, type[APIError]] = {
    400: InvalidInputError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLarge,
    422: InvalidInputError,
}


def error_class(status_code: int, code: str) -> type[APIError]:
    known = ERRORS_BY_CODE.get(code)
    if known is not None:
        return known
    return ERRORS_BY_STATUS.get(status_code, APIError)
