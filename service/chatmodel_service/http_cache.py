"""Conditional GETs: strong ETags, Cache-Control, and 304 answers to If-None-Match."""

from __future__ import annotations

import hashlib
import uuid
from typing import Annotated, Any

from fastapi import Header, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

# A version never changes: caches may keep it for a year without asking again.
IMMUTABLE = "public, max-age=31536000, immutable"
# May change (publishing moves "deploy"): caches must ask again, and get a 304 if unchanged.
REVALIDATE = "no-cache"

IfNoneMatch = Annotated[
    str | None, Header(description="ETags of the copy you hold; answered with 304 if current.")
]

NOT_MODIFIED_RESPONSE: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified: the If-None-Match ETag is still current (empty body)."}
}


def etag_for(*ids: uuid.UUID) -> str:
    """A strong ETag for a representation identified by these ids."""
    if len(ids) == 1:
        return f'"{ids[0].hex}"'
    digest = hashlib.sha256("/".join(i.hex for i in ids).encode()).hexdigest()
    return f'"{digest[:32]}"'


def _opaque(tag: str) -> str:
    return tag.strip().removeprefix("W/")


def matches(if_none_match: str | None, current: str) -> bool:
    """If-None-Match uses the weak comparison: ``W/"x"`` matches ``"x"``; ``*`` matches all."""
    if if_none_match is None:
        return False
    candidates = [_opaque(tag) for tag in if_none_match.split(",")]
    return "*" in candidates or _opaque(current) in candidates


def json_response(
    body: BaseModel,
    *,
    etag: str | None = None,
    cache_control: str | None = None,
    if_none_match: str | None = None,
) -> Response:
    """``body`` as JSON with caching headers, or an empty 304 if the client's copy is current."""
    headers = {}
    if etag is not None:
        headers["ETag"] = etag
    if cache_control is not None:
        headers["Cache-Control"] = cache_control
    if etag is not None and matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    return JSONResponse(body.model_dump(mode="json", by_alias=True), headers=headers)
