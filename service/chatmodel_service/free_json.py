"""Free-form JSON fields: values the API stores or forwards without a schema of its own
(metadata, function and tool ``parameters``, ``response_format``, ``tool_choice``,
``function_call``), and the two rules every one of them keeps.

- **At most ``MAX_JSON_DEPTH`` (64) levels** of objects and arrays, the field's own object
  counted: ``{"a": {}}`` is 2 levels. Deeper values were stored, then failed when the answer
  was serialized (pydantic stops at 255 levels), a 500 that also closed the connection.
- **Finite numbers only.** Python's JSON parser reads ``NaN``, ``Infinity`` and
  ``-Infinity``, which are not JSON, and reads ``1e999`` as infinity: SQLite stored them as
  non-standard JSON and answered ``null``, PostgreSQL refused them.

Both are a 422 ``validation_error`` naming the field. A body nested deeper than the JSON
parser itself reads (Python's recursion limit: about 1000 levels less the server's own
stack) never reaches these checks; it is a 422 for the whole body (``errors.py``).
"""

from __future__ import annotations

import math
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator

MAX_JSON_DEPTH = 64

JSONT = TypeVar("JSONT")


def _first_problem(value: Any, depth: int, path: str) -> str | None:
    """Why ``value`` (``depth`` levels down, at ``path`` inside the field) breaks a rule."""
    if isinstance(value, float):
        if math.isfinite(value):
            return None
        where = f" (at {path})" if path else ""
        return f"NaN, Infinity and -Infinity are not JSON numbers{where}"
    if isinstance(value, dict):
        children: list[tuple[str, Any]] = [(str(key), item) for key, item in value.items()]
    elif isinstance(value, list):
        children = [(str(index), item) for index, item in enumerate(value)]
    else:
        return None
    if depth > MAX_JSON_DEPTH:  # the recursion stops here, whatever the parser read
        return f"nested more than {MAX_JSON_DEPTH} levels deep (the limit of free-form JSON)"
    for name, item in children:
        problem = _first_problem(item, depth + 1, f"{path}.{name}" if path else name)
        if problem is not None:
            return problem
    return None


def check_free_json(value: JSONT) -> JSONT:
    """A free-form value as it came, or a ValueError naming the rule it breaks."""
    problem = _first_problem(value, 1, "")
    if problem is not None:
        raise ValueError(problem)
    return value


FreeJSON = Annotated[dict[str, Any], AfterValidator(check_free_json)]
"""A free-form JSON object: at most ``MAX_JSON_DEPTH`` levels deep, finite numbers only."""
