"""Errors on the LLM Engine routes only: the service's own body, LLM Engine's statuses.

LLM Engine answers ``{"detail": message}`` and its SDK reads only ``detail``, which the
service's body ``{"error": code, "detail": message, "field": name}`` already carries;
what differs is the status. The SDK knows 400, 401, 404, 429 and 5xx
(``BadRequestError``, ``UnauthorizedError``, ``NotFoundError``,
``RateLimitExceededError``, ``ServerError``), so here a request the service would answer
with 422 is a 400, a chat model that is missing or has nothing published a 404, and a
failed model call an error with the OpenAI-compatible API's status for it (429 rate
limited, 504 timed out, 502 other provider failures) instead of a stored failed run.
``field`` names the LLM Engine request field (``max_new_tokens``, not ``max_tokens``).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from chatmodel_service.errors import (
    ChatModelNotFound,
    NothingPublished,
    ServiceError,
    undecodable_body,
)
from chatmodel_service.openai_compat.errors import as_openai_error

# The OpenAI-style request fields the service checks, as this API names them.
_FIELDS = {
    "model": "model_endpoint_name",
    "chat_model": "model_endpoint_name",
    "max_tokens": "max_new_tokens",
    "stop": "stop_sequences",
}


def _renamed(field: str | None, detail: str) -> tuple[str | None, str]:
    if field not in _FIELDS:
        return field, detail
    ours = _FIELDS[field]
    if detail.startswith(f"{field}: "):
        detail = f"{ours}: {detail.removeprefix(f'{field}: ')}"
    return ours, detail


def llm_engine_error(exc: Exception) -> JSONResponse:
    """Any exception a route of this API raised, as its answer."""
    status: int
    headers: dict[str, str] | None
    if isinstance(exc, ServiceError):
        status, code, detail, field = exc.status_code, exc.code, exc.detail, exc.field
        if isinstance(exc, ChatModelNotFound | NothingPublished):
            status = 404
        headers = exc.headers
    else:  # validation, a failed model call, the database: classified as OpenAI's routes do
        error = as_openai_error(exc)
        status, headers = error.status_code, error.headers
        code = error.body.error.code or "http_error"
        detail, field = error.body.error.message, error.body.error.param
    field, detail = _renamed(field, detail)
    body = {"error": code, "detail": detail, "field": field}
    return JSONResponse(body, status_code=400 if status == 422 else status, headers=headers)


class LLMEngineRoute(APIRoute):
    """A route whose errors leave with LLM Engine's statuses (see the module)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def llm_engine_errors(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:  # every error of these routes, with LLM Engine's status
                undecodable = undecodable_body(exc, request.headers.get("content-type"))
                return llm_engine_error(undecodable or exc)

        return llm_engine_errors
