"""Errors on the Scale EGP routes: the service's own body, ``{"error", "detail", "field"}``.

EGP answers ``{"detail": message}`` and its SDK reads only that (``exception_from_response``
unwraps ``detail``; any status but 200 raises). Our body already carries the message as
``detail``, so these routes keep the one error vocabulary: ``ServiceError``s, validation
(422) and the rest go to the app's handlers unchanged. The one thing the app's handlers do
not know is the ``OpenAIError`` that the OpenAI-compatible service functions raise for a
failed model call (429, 502, 504, a 400 ``context_length_exceeded``); the route class
below answers it in the same body, with its status, on these routes only.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from chatmodel_service.openai_compat.errors import OpenAIError


def error_body(error: OpenAIError) -> dict[str, Any]:
    """An OpenAI-style failure in the service's error body."""
    detail = error.body.error
    return {
        "error": detail.code or "upstream_error",
        "detail": detail.message,
        "field": detail.param,
    }


class EGPRoute(APIRoute):
    """A route whose failed model calls answer the service's error body."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def egp_errors(request: Request) -> Response:
            try:
                return await handler(request)
            except OpenAIError as exc:
                return JSONResponse(
                    error_body(exc), status_code=exc.status_code, headers=exc.headers
                )

        return egp_errors
