"""Exceptions, and how an answer (or no answer) becomes one. Names mirror the server's
``error`` codes.

::

    ChatModelError
    ├── RunWaitTimeout                  RunHandle.wait(timeout) passed; also a TimeoutError
    ├── NothingToScore                  log_score found no reply in the session to score
    ├── APIConnectionError              the server could not be reached (nothing came back)
    │   └── APITimeoutError             ... or did not answer within the timeout
    └── APIError                        the server answered with an error (or an unreadable body)
        ├── AuthenticationError         401 unauthorized
        ├── PermissionDeniedError       403 forbidden
        ├── NotFoundError               404 not_found
        │   ├── ChatModelNotFound       404 chat_model_not_found
        │   ├── VersionNotFound         404 version_not_found
        │   ├── SessionNotFound         404 session_not_found
        │   ├── MessageNotFound         404 message_not_found
        │   └── RunNotFound             404 run_not_found
        ├── ConflictError               409 conflict
        │   ├── AlreadyExists           409 already_exists
        │   └── SessionBusyError        409 session_busy, run_in_progress (``retry_after``)
        ├── InvalidInputError           422 invalid_input (and any other 400/422)
        │   ├── ValidationError         422 validation_error
        │   └── NothingPublished        422 nothing_published
        ├── PayloadTooLarge             413 payload_too_large
        ├── RateLimitError              429 rate_limited (``retry_after``)
        └── ServiceUnavailableError     503, any code (``retry_after``)

Every ``APIError`` has ``retry_after``: the seconds the server's ``Retry-After`` header
asked for, or ``None`` when it sent none.

The server's other codes are mapped by their status on purpose (``CODES_MAPPED_BY_STATUS``
says which and why), and so is a code this client does not know; a status without a class
is a plain ``APIError``. ``run``/``arun`` never raise these: they return them as an
``LLMResponse`` (or stream chunk) with ``error=True`` and ``error_type`` set to the code.
"""

from __future__ import annotations

import email.utils
import math
import time
from typing import Any

import httpx

from chatmodel._models import RunState


class ChatModelError(Exception):
    """Base class of every exception this package raises."""


class APIConnectionError(ChatModelError):
    """The request did not get an answer: connection refused or dropped, DNS, TLS, ..."""

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url


class APITimeoutError(APIConnectionError):
    """No answer within the timeout."""


class RunWaitTimeout(ChatModelError, TimeoutError):
    """``RunHandle.wait(timeout=...)`` gave up waiting: the run is still going on the server
    (it is not cancelled). ``state`` is the run as last seen; wait again, follow its
    ``events()``, or ``cancel()`` it. Also a ``TimeoutError``, so ``except TimeoutError``
    catches it; it is no ``APITimeoutError``: the server did answer."""

    def __init__(self, message: str, *, run_uuid: str, state: RunState) -> None:
        super().__init__(message)
        self.run_uuid = run_uuid
        self.state = state


class NothingToScore(ChatModelError, LookupError):
    """``log_score`` without ``message_uuid`` found no reply to score: the session has no
    assistant message (or is not made yet). Nothing was sent."""


class APIError(ChatModelError):
    """The server answered with an error body ``{"error": code, "detail", "field"}``."""

    def __init__(
        self,
        status_code: int,
        code: str,
        detail: str,
        field: str | None = None,
        body: dict[str, Any] | None = None,
        *,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{status_code} {code}: {detail}")
        self.status_code = status_code
        self.code = code
        self.detail = detail
        self.field = field
        self.body = body if body is not None else {}
        self.retry_after = retry_after


class AuthenticationError(APIError):
    """No API key, or one the server does not accept (malformed, unknown or revoked)."""


class PermissionDeniedError(APIError):
    """A valid key whose scope does not allow the call (a client key on an admin route)."""


class NotFoundError(APIError):
    pass


class ChatModelNotFound(NotFoundError):
    pass


class VersionNotFound(NotFoundError):
    pass


class SessionNotFound(NotFoundError):
    pass


class MessageNotFound(NotFoundError):
    """The session has no message under that uuid (``log_score(message_uuid=...)``)."""


class RunNotFound(NotFoundError):
    """No run under that uuid in this project (``get_run``, a handle's ``status``/``cancel``)."""


class ConflictError(APIError):
    pass


class AlreadyExists(ConflictError):
    pass


class SessionBusyError(ConflictError):
    """Another run holds the session (one run at a time); ``retry_after`` says when to try
    again. ``delete_session(force=True)`` deletes it anyway."""


class InvalidInputError(APIError):
    pass


class ValidationError(InvalidInputError):
    """The request broke the wire contract; ``field`` is the first offending path."""


class NothingPublished(InvalidInputError):
    pass


class PayloadTooLarge(APIError):
    pass


class RateLimitError(APIError):
    """Too many requests for this API key; ``retry_after`` is how many seconds to wait."""


class ServiceUnavailableError(APIError):
    """503: the server cannot serve the request right now (its database is busy or cannot
    store data); nothing was stored. ``retry_after`` says when to try again."""


ERRORS_BY_CODE: dict[str, type[APIError]] = {
    "unauthorized": AuthenticationError,
    "forbidden": PermissionDeniedError,
    "not_found": NotFoundError,
    "chat_model_not_found": ChatModelNotFound,
    "version_not_found": VersionNotFound,
    "session_not_found": SessionNotFound,
    "message_not_found": MessageNotFound,
    "run_not_found": RunNotFound,
    "conflict": ConflictError,
    "already_exists": AlreadyExists,
    "session_busy": SessionBusyError,
    # The server's kind of session_busy: a resent run whose first attempt is still going.
    "run_in_progress": SessionBusyError,
    "invalid_input": InvalidInputError,
    "validation_error": ValidationError,
    "nothing_published": NothingPublished,
    "payload_too_large": PayloadTooLarge,
    "rate_limited": RateLimitError,
}

ERRORS_BY_STATUS: dict[int, type[APIError]] = {
    400: InvalidInputError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLarge,
    422: InvalidInputError,
    429: RateLimitError,
    503: ServiceUnavailableError,
}

# The server's codes that get no class of their own: each is raised as its status's class
# (ERRORS_BY_STATUS), ``code`` telling them apart. tests/client/test_error_contract.py
# holds every code the server can answer to this list or to ERRORS_BY_CODE.
CODES_MAPPED_BY_STATUS = frozenset(
    {
        # Only a run is answered with these, and run/arun never raise: they come back as
        # ``error_type``.
        "nothing_to_regenerate",  # 409 ConflictError
        "idempotency_key_reused",  # 422 InvalidInputError
        # Admin calls (publish, rollback), made by the command line, which prints the detail.
        "stale_release",  # 409 ConflictError
        "nothing_to_roll_back",  # 409 ConflictError
        "variables_mismatch",  # 422 InvalidInputError (a split refused by publish)
        # The webhook admin routes, which this client does not call (the command line may).
        "webhook_not_found",  # 404 NotFoundError
        "delivery_not_found",  # 404 NotFoundError
        # Retry later, whatever the cause: the 503 class carries retry_after for each.
        "database_busy",  # 503 ServiceUnavailableError
        "storage_unavailable",  # 503 ServiceUnavailableError
        "not_ready",  # 503 ServiceUnavailableError (/readyz, which this client never asks)
        # Generic answers, named after their status.
        "bad_request",  # 400 InvalidInputError
        "method_not_allowed",  # 405 APIError
        "http_error",  # any other status of the server's HTTP layer
        "internal_error",  # 500 APIError
    }
)


def error_class(status_code: int, code: str) -> type[APIError]:
    known = ERRORS_BY_CODE.get(code)
    if known is not None:
        return known
    return ERRORS_BY_STATUS.get(status_code, APIError)


# -- from answers -----------------------------------------------------------------------


def connection_error(exc: httpx.RequestError, url: str) -> APIConnectionError:
    error: APIConnectionError
    if isinstance(exc, httpx.TimeoutException):
        error = APITimeoutError(f"No answer from the chatmodel server at {url} in time.", url=url)
    else:
        reason = str(exc) or type(exc).__name__
        error = APIConnectionError(
            f"Could not reach the chatmodel server at {url}: {reason}", url=url
        )
    error.__cause__ = exc
    return error


def error_body(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def retry_after(response: httpx.Response) -> float | None:
    """The ``Retry-After`` header in seconds (a number, or an HTTP date from now)."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return max(seconds, 0.0) if math.isfinite(seconds) else None


def api_error(response: httpx.Response) -> APIError:
    """The exception for an error answer, by its ``error`` code, else by its status."""
    body = error_body(response) or {}
    code = body.get("error")
    if not isinstance(code, str):
        code = "http_error"
    detail = body.get("detail")
    if not isinstance(detail, str):
        detail = response.reason_phrase or "The server answered with an error."
    field_path = body.get("field")
    return error_class(response.status_code, code)(
        response.status_code,
        code,
        detail,
        field=field_path if isinstance(field_path, str) else None,
        body=body,
        retry_after=retry_after(response),
    )


def invalid_response(response: httpx.Response, reason: str) -> APIError:
    return APIError(
        response.status_code,
        "invalid_response",
        f"The server's answer could not be read ({reason}); is the base URL a chatmodel server?",
    )
