"""The wire format of the error body (``chatmodel_service.errors``), for the OpenAPI document.

Every route declares one ``4XX`` response with this schema (``create_app`` passes
``ERROR_RESPONSES`` to FastAPI), instead of FastAPI's default 422 ``HTTPValidationError``,
which this service never sends. The OpenAI-compatible routes declare their own shape.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class FieldError(BaseModel):
    field: str = Field(description="Dotted path of the offending input, e.g. `messages.0.role`.")
    message: str


class ServiceErrorBody(BaseModel):
    """``{"error": <stable code>, "detail": <human text>, "field": <path or null>}``."""

    error: str = Field(
        description="Stable machine code: `validation_error`, `chat_model_not_found`, "
        "`conflict`, `unauthorized`, ..."
    )
    detail: str = Field(description="What went wrong, for a person.")
    field: str | None = Field(description="The offending input's path, when one is to blame.")
    errors: list[FieldError] | None = Field(
        default=None, description="`validation_error` only: every offending field."
    )


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": ServiceErrorBody, "description": "A client error, with the error body."},
}

__all__ = ["ERROR_RESPONSES", "FieldError", "ServiceErrorBody"]
