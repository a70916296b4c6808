"""The request being handled: its id, when it started, the app's metrics and the caller's
key name. The request middleware sets it for the request's whole lifetime (streamed
bodies included), so code deep in a run can reach the app's metrics and the log lines
carry the request id without either being passed through every signature."""

from __future__ import annotations

import re
import time
import uuid
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chatmodel_service.observability.metrics import ServiceMetrics

REQUEST_ID_HEADER = "X-Request-ID"
# Visible ASCII only (no spaces or control characters: it goes into headers and logs).
_REQUEST_ID = re.compile(r"[\x21-\x7e]{1,200}")


@dataclass
class RequestContext:
    request_id: str
    metrics: ServiceMetrics
    started: float = field(default_factory=time.perf_counter)
    key_name: str | None = None  # set once the request's API key is known

    def elapsed(self) -> float:
        """Seconds since the request arrived."""
        return time.perf_counter() - self.started


_current: ContextVar[RequestContext | None] = ContextVar("chatmodel_request", default=None)


def current_request() -> RequestContext | None:
    """The request being handled, or None outside one (a CLI command, a test calling a
    service function directly)."""
    return _current.get()


def enter_request(context: RequestContext) -> Token[RequestContext | None]:
    """Make ``context`` current; returns the token :func:`leave_request` takes."""
    return _current.set(context)


def leave_request(token: Token[RequestContext | None]) -> None:
    _current.reset(token)


def request_id_from(header: str | None) -> str:
    """The client's ``X-Request-ID`` when it is up to 200 visible ASCII characters, else a
    new one (a uuid4 in hex)."""
    if header is not None and _REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


def note_key_name(key_name: str | None) -> None:
    """Record the API key the request authenticated with (for its log line)."""
    context = _current.get()
    if context is not None:
        context.key_name = key_name
