"""JSON responses of wire schemas, encoded once by pydantic (no dict in between)."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi.responses import Response
from pydantic import BaseModel


def schema_response(
    body: BaseModel, headers: Mapping[str, str] | None = None, *, status_code: int = 200
) -> Response:
    """``body`` as ``application/json``: the same bytes ``JSONResponse(body.model_dump(
    mode="json"))`` would send, without building and re-walking the dict."""
    return Response(
        body.model_dump_json(),
        status_code=status_code,
        media_type="application/json",
        headers=headers,
    )
