"""Request bodies FastAPI could not take, as our ``validation_error`` body: pydantic's
errors (``validation_body``) and bodies the JSON parser gave up on (``undecodable_body``).
"""

from __future__ import annotations

import email.message
import re
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi.exceptions import RequestValidationError


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
