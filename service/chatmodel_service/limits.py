"""Request limits: body size (before any route reads the body), text the database can
store, a rate limit per API key, and the configurable per-request counts and lengths."""

from __future__ import annotations

import json
import math
import re
import time
import uuid
from collections.abc import Callable, Iterator, Sequence, Sized
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chatmodel_service.config import Settings
from chatmodel_service.errors import InvalidInput, PayloadTooLarge, RateLimited


class BodySizeLimit:
    """Answer 413 for bodies over ``max_bytes``, by Content-Length or by counting chunks."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(f"The request body exceeds {self.max_bytes} bytes.", field="body")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise self._too_large()
            return message

        await self.app(scope, counting_receive, send)

    async def _reject(self, send: Send) -> None:
        error = self._too_large()
        payload = json.dumps(error.body()).encode()
        await send(
            {
                "type": "http.response.start",
                "status": error.status_code,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


class RateLimiter:
    """A token bucket per API key, in this process: ``per_minute`` requests a minute, in
    bursts of up to ``per_minute``. Several server processes each keep their own."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._buckets: dict[uuid.UUID, tuple[float, float]] = {}  # key -> (tokens, at)

    def take(self, key_id: uuid.UUID) -> None:
        """Spend one token of ``key_id``'s bucket, or raise RateLimited (with Retry-After)."""
        if self.per_minute <= 0:
            return
        rate = self.per_minute / 60.0  # tokens per second
        now = self.clock()
        tokens, at = self._buckets.get(key_id, (float(self.per_minute), now))
        tokens = min(float(self.per_minute), tokens + (now - at) * rate)
        if tokens < 1:
            self._buckets[key_id] = (tokens, now)
            retry_after = max(1, math.ceil((1 - tokens) / rate))
            raise RateLimited(
                f"Too many requests for this API key (limit {self.per_minute} a minute); "
                f"retry in {retry_after} s.",
                retry_after=retry_after,
            )
        self._buckets[key_id] = (tokens - 1, now)


def check_messages(settings: Settings, contents: Sequence[str | None], field: str) -> None:
    """Message count (422) and content length (413) against the configured limits."""
    if len(contents) > settings.max_messages_per_add:
        raise InvalidInput(
            f"At most {settings.max_messages_per_add} messages per request, not {len(contents)}.",
            field=field,
        )
    for index, content in enumerate(contents):
        if content is not None and len(content) > settings.max_content_chars:
            raise PayloadTooLarge(
                f"A message's content is limited to {settings.max_content_chars} characters "
                f"(this one has {len(content)}).",
                field=f"{field}.{index}.content",
            )


def check_functions(settings: Settings, functions: Sized | None, field: str) -> None:
    """Functions or tools per run against the configured limit (422)."""
    if functions is not None and len(functions) > settings.max_functions_per_run:
        raise InvalidInput(
            f"At most {settings.max_functions_per_run} {field} per run, not {len(functions)}.",
            field=field,
        )


# A JSON escape the database cannot store: NUL (PostgreSQL rejects it in text and jsonb)
# or half of a surrogate pair (not encodable as UTF-8). Only a body that has one is parsed.
_SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
UNSTORABLE_TEXT = "Text may not contain NUL characters (\\u0000) or unpaired surrogates."


def _storable(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _unstorable(value: Any, loc: tuple[int | str, ...]) -> Iterator[tuple[int | str, ...]]:
    """Where in a parsed JSON value a string (or object key: the object's place) is
    unstorable, in document order. A loop with a stack of its own, not recursion: the
    value may be nested as deeply as the parser reads, beyond what the stack has left."""
    pending: list[tuple[Any, tuple[int | str, ...]]] = [(value, loc)]
    while pending:
        value, loc = pending.pop()
        if isinstance(value, str):
            if not _storable(value):
                yield loc
        elif isinstance(value, dict):
            if not all(_storable(key) for key in value):
                yield loc
            pending.extend(reversed([(item, (*loc, key)) for key, item in value.items()]))
        elif isinstance(value, list):
            pending.extend(reversed([(item, (*loc, index)) for index, item in enumerate(value)]))


async def reject_unstorable_text(request: Request) -> None:
    """Every route: a 422 naming the path parameter, query parameter or body field whose
    text has a NUL or a lone surrogate, instead of a database error (a 500) later."""
    found: list[tuple[int | str, ...]] = [
        ("path", name) for name, value in request.path_params.items() if not _storable(value)
    ]
    found += [
        ("query", name)
        for name, value in request.query_params.multi_items()
        if not (_storable(name) and _storable(value))
    ]
    body = await request.body()
    if _SUSPECT_ESCAPE.search(body):
        try:
            parsed = json.loads(body)
        except (ValueError, RecursionError):
            # Not JSON, or nested deeper than this stack can parse: the route's own
            # validation says so (the depth limit of free-form JSON, free_json.py).
            parsed = None
        found += _unstorable(parsed, ("body",))
    if found:
        raise RequestValidationError(
            [{"type": "string_unstorable", "loc": loc, "msg": UNSTORABLE_TEXT} for loc in found]
        )
