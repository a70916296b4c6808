"""Responses shared by the routers: JSON of wire schemas, encoded once by pydantic (no
dict in between), and server-sent event streams that notice a client going away."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import suppress

import anyio
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel
from starlette.types import Receive, Scope, Send

STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


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


class EventStream(StreamingResponse):
    """``text/event-stream`` of ``frames``, closed as soon as the client goes away.

    A stream may wait a long time between events (a run that thinks); Starlette would
    only find the client gone at the next write (ASGI 2.4), and leave closing the frames
    to the garbage collector. Here the disconnect is listened for while the frames are
    sent, and the frames are closed (their ``finally`` runs) either way, at once."""

    def __init__(
        self, frames: AsyncIterator[str], headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(
            frames, media_type="text/event-stream", headers=STREAM_HEADERS | dict(headers or {})
        )
        self._frames = frames

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            async with anyio.create_task_group() as group:

                async def send_all() -> None:
                    with suppress(OSError):  # the client went away during a write
                        await self.stream_response(send)
                    group.cancel_scope.cancel()

                group.start_soon(send_all)
                await self.listen_for_disconnect(receive)
                group.cancel_scope.cancel()
        finally:
            close = getattr(self._frames, "aclose", None)
            if close is not None:
                with anyio.CancelScope(shield=True):
                    await close()
