"""OpenAI's error shape for the OpenAI-compatible routes only.

Every failure on these routes answers ``{"error": {"message", "type", "param", "code"}}``
with OpenAI's status codes: our ``ServiceError``s keep their code and message (422
becomes 400), request validation is a 400, and a failed model call is an error here
(unlike ``POST /v1/sessions/{uuid}/run``), with a status chosen from its ``error_type``.
The rest of the API keeps its own body: the route class below catches only what these
routes raise, and the middleware only rejects oversized bodies sent to these paths. A
path under ``/v1/`` that no route serves, outside the native API's, is OpenAI's 404.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, cast

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute, APIRouter
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from chatmodel_service.config import Settings
from chatmodel_service.errors import (
    ChatModelNotFound,
    NothingPublished,
    PayloadTooLarge,
    ServiceError,
    SessionBusy,
    storage_failure,
    storage_unavailable,
    undecodable_body,
    validation_body,
)
from chatmodel_service.llm.types import LLMFailure
from chatmodel_service.observability.metrics import count_busy_rejection
from chatmodel_service.openai_compat.schemas import ErrorBody, ErrorDetail

logger = logging.getLogger("chatmodel_service")

OPENAI_PATHS = frozenset({"/v1/chat/completions", "/v1/completions"})
# The Responses and Conversations APIs (``responses_api``): every path under these.
OPENAI_PREFIXES = ("/v1/responses", "/v1/conversations")

# A failed model call: (status, OpenAI error type, code). Anything else is a 502.
UPSTREAM_STATUS: dict[str, tuple[int, str, str]] = {
    "rate_limited": (429, "rate_limit_error", "rate_limit_exceeded"),
    "timeout": (504, "server_error", "timeout"),
    "context_window_exceeded": (400, "invalid_request_error", "context_length_exceeded"),
    "bad_request": (400, "invalid_request_error", "upstream_bad_request"),
    # The model answered but the database could not store it (a stream's end).
    "storage_unavailable": (503, "server_error", "storage_unavailable"),
}
_MODEL_MISSING = frozenset({"model_not_found", "unknown_model"})

_TYPES = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}


def _type_for(status: int) -> str:
    if status >= 500:
        return "server_error"
    return _TYPES.get(status, "invalid_request_error")


class OpenAIError(Exception):
    """An error answer in OpenAI's shape."""

    def __init__(
        self, status_code: int, message: str, *, code: str | None, param: str | None = None
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.headers: dict[str, str] | None = None
        self.body = ErrorBody(
            error=ErrorDetail(message=message, type=_type_for(status_code), param=param, code=code)
        )

    def response(self, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse(
            self.body.model_dump(mode="json"),
            status_code=self.status_code,
            headers=headers or self.headers,
        )


def upstream_error(failure: LLMFailure, *, passthrough: bool) -> OpenAIError:
    """A failed model call. The upstream's authentication or a chat model's unknown model
    are the server's configuration, not the caller's mistake: 502. For a passthrough call
    the caller chose the model, so an unknown one is a 404 ``model_not_found``."""
    if failure.error_type in _MODEL_MISSING and passthrough:
        return OpenAIError(404, failure.error_log, code="model_not_found", param="model")
    status, _, code = UPSTREAM_STATUS.get(failure.error_type, (502, "", failure.error_type))
    return OpenAIError(status, failure.error_log, code=code)


def _param(field: str | None) -> str | None:
    return "model" if field == "chat_model" else field


def from_service_error(exc: ServiceError) -> OpenAIError:
    if isinstance(exc, SessionBusy):
        count_busy_rejection(exc.code)
    if isinstance(exc, ChatModelNotFound | NothingPublished):
        return OpenAIError(404, exc.detail, code="model_not_found", param="model")
    status = 400 if exc.status_code == 422 else exc.status_code
    error = OpenAIError(status, exc.detail, code=exc.code, param=_param(exc.field))
    error.headers = exc.headers
    return error


def as_openai_error(exc: Exception) -> OpenAIError:
    """Any exception a route of this API raised, in OpenAI's shape."""
    if isinstance(exc, OpenAIError):
        return exc
    if isinstance(exc, ServiceError):
        return from_service_error(exc)
    if isinstance(exc, RequestValidationError):
        body = validation_body(list(exc.errors()))
        return OpenAIError(400, body["detail"], code=body["error"], param=body["field"])
    if isinstance(exc, IntegrityError):
        logger.info("integrity conflict: %s", type(exc).__name__)
        return OpenAIError(
            409, "The write conflicts with data stored concurrently; retry.", code="conflict"
        )
    if isinstance(exc, HTTPException):
        if isinstance(exc.__cause__, ServiceError):  # the body-size limit, while reading
            return from_service_error(exc.__cause__)
        return OpenAIError(exc.status_code, str(exc.detail), code=None)
    cause = storage_failure(exc)
    if cause is not None:  # disk full, a read-only database: nothing was stored
        logger.error("the database cannot store data: %s (%s)", cause, type(exc).__name__)
        return from_service_error(storage_unavailable(cause))
    logger.exception("unexpected error", exc_info=exc)
    return OpenAIError(500, "Unexpected server error; see the server log.", code="internal_error")


class OpenAIRoute(APIRoute):
    """A route whose errors leave in OpenAI's shape, a 405 for another method included."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().handle(scope, receive, send)
        except HTTPException as exc:  # raised by routing, before any response started
            if exc.status_code != 405:
                raise
            error = OpenAIError(405, "Method Not Allowed", code="method_not_allowed")
            await error.response(dict(exc.headers or {}))(scope, receive, send)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def openai_errors(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:  # every error of these routes, in OpenAI's shape
                undecodable = undecodable_body(exc, request.headers.get("content-type"))
                return as_openai_error(undecodable or exc).response()

        return openai_errors


class OpenAIBodyLimit:
    """413 in OpenAI's shape for an oversized body declared by Content-Length on these
    paths (``BodySizeLimit`` answers the rest of the API, and counts undeclared bodies)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"] if scope["type"] == "http" else ""
        if path in OPENAI_PATHS or path.startswith(OPENAI_PREFIXES):
            limit = cast(Settings, scope["app"].state.settings).max_body_bytes
            declared = dict(scope.get("headers") or []).get(b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                too_large = PayloadTooLarge(
                    f"The request body exceeds {limit} bytes.", field="body"
                )
                await from_service_error(too_large).response()(scope, receive, send)
                return
        await self.app(scope, receive, send)


class UnservedPaths:
    """What the app answers for a path no route matches. Under ``/v1/``, outside the native
    API's own paths, OpenAI's 404 naming the path: an OpenAI client calling ``/v1/embeddings``
    or ``/v1/audio/speech`` learns that this server does not serve it (a bare 404 reads as "no
    such model" to some). Any other path, ``/v1/sessions/...`` included, gets ``fallback``:
    the native 404, which the chatmodel client reads."""

    def __init__(self, fallback: ASGIApp, native_routers: Iterable[APIRouter]) -> None:
        self.fallback = fallback
        # The first segment of every native path under /v1/: "sessions", "chat-models", ...
        self.native_segments = frozenset(
            route.path.split("/")[2]
            for router in native_routers
            for route in router.routes
            if isinstance(route, APIRoute) and route.path.startswith("/v1/")
        )

    def serves_openai_clients(self, path: str) -> bool:
        if not path.startswith("/v1/"):
            return False
        return path.split("/")[2] not in self.native_segments

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.serves_openai_clients(scope["path"]):
            method, path = scope["method"], scope["path"]
            unserved = OpenAIError(
                404, f"{method} {path} is not served by this server.", code="unknown_path"
            )
            await unserved.response()(scope, receive, send)
            return
        await self.fallback(scope, receive, send)
