"""The outermost layer of every HTTP request: its request id (the client's valid
``X-Request-ID`` or a new one, echoed on every response, errors included), its context
(``request_context.py``), its HTTP metrics and its one log line."""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chatmodel_service.observability.logs import ACCESS_LOGGER
from chatmodel_service.observability.metrics import ServiceMetrics
from chatmodel_service.observability.request_context import (
    REQUEST_ID_HEADER,
    RequestContext,
    enter_request,
    leave_request,
    request_id_from,
)

access_logger = logging.getLogger(ACCESS_LOGGER)

_HEADER_NAME = REQUEST_ID_HEADER.lower().encode()
# Probes and scrapes that succeed are logged at DEBUG: they arrive every few seconds.
QUIET_ROUTES = frozenset({"/health", "/healthz", "/readyz", "/metrics"})


def route_template(scope: Scope) -> str:
    """The matched route's path template (``/v1/sessions/{session_uuid}/run``), never the
    raw path, so metric labels stay bounded; ``unmatched`` when no route matched."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else "unmatched"


class RequestObservability:
    """Pure ASGI (no BaseHTTPMiddleware): the context it sets is seen by the route, its
    dependencies and a streamed body alike. It wraps the whole app, the error middleware
    included, so a 500 carries the request id too."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(_HEADER_NAME)
        context = RequestContext(
            request_id_from(given.decode("latin-1") if given is not None else None),
            self.metrics,
        )
        request_id = context.request_id.encode()
        status = 500  # unless a response starts: the app raised before answering

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [*message.get("headers", ()), (_HEADER_NAME, request_id)]
            await send(message)

        token = enter_request(context)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            leave_request(token)
            self._finished(scope, context, status)

    def _finished(self, scope: Scope, context: RequestContext, status: int) -> None:
        seconds = context.elapsed()
        method = str(scope["method"])
        route = route_template(scope)
        self.metrics.observe_request(method, route, status, seconds)
        duration_ms = round(seconds * 1000, 1)
        quiet = route in QUIET_ROUTES and status < 400
        access_logger.log(
            logging.DEBUG if quiet else logging.INFO,
            "%s %s %d %.1f ms",
            method,
            scope["path"],
            status,
            duration_ms,
            extra={
                "request_id": context.request_id,
                "method": method,
                "route": route,
                "path": scope["path"],
                "status": status,
                "duration_ms": duration_ms,
                "key_name": context.key_name,
            },
        )
