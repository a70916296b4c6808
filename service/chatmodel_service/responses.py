"""Responses shared by the routers: JSON of wire schemas, encoded once by pydantic (no
dict in between), and server-sent event streams that notice a client going away."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
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


# What a stream sends when the server shuts down before its end, given how many events it
# has sent (SSE events are separated by a blank line, which JSON text never contains).
Closing = Callable[[int], str]


def no_closing(_: int) -> str:
    return ""


class EventStream(StreamingResponse):
    """``text/event-stream`` of ``frames``, closed as soon as the client goes away.

    A stream may wait a long time between events (a run that thinks); Starlette would
    only find the client gone at the next write (ASGI 2.4), and leave closing the frames
    to the garbage collector. Here the disconnect is listened for while the frames are
    sent, and the frames are closed (their ``finally`` runs) either way, at once.

    While it streams, it is in its app's ``state.open_streams``: a server that shuts down
    (``serving``) ends each that is still open with ``closing`` (an error event in the
    stream's API's framing, and its terminator) instead of cutting the connection."""

    def __init__(
        self,
        frames: AsyncIterator[str],
        headers: Mapping[str, str] | None = None,
        *,
        closing: Closing = no_closing,
    ) -> None:
        super().__init__(
            frames, media_type="text/event-stream", headers=STREAM_HEADERS | dict(headers or {})
        )
        self._frames = frames
        self._closing = closing
        self._sending: anyio.CancelScope | None = None
        self._events_sent = 0
        self._started = False
        self._complete = False
        self._shut_down = False
        self.finished = anyio.Event()  # set once it has sent its last byte (or failed to)

    def end_for_shutdown(self) -> None:
        """Stop relaying the frames (they are closed) and send ``closing``."""
        self._shut_down = True
        if self._sending is not None:
            self._sending.cancel()

    async def stream_response(self, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        self._started = True
        async for chunk in self.body_iterator:
            text = chunk if isinstance(chunk, str) else bytes(chunk).decode()
            await send({"type": "http.response.body", "body": text.encode(), "more_body": True})
            self._events_sent += text.count("\n\n")
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        self._complete = True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        streams: set[EventStream] | None = getattr(
            getattr(scope.get("app"), "state", None), "open_streams", None
        )
        if streams is not None:
            streams.add(self)
        try:
            async with anyio.create_task_group() as group:
                self._sending = group.cancel_scope

                async def send_all() -> None:
                    with suppress(OSError):  # the client went away during a write
                        await self.stream_response(send)
                    group.cancel_scope.cancel()

                group.start_soon(send_all)
                await self.listen_for_disconnect(receive)
                group.cancel_scope.cancel()
        finally:
            if streams is not None:
                streams.discard(self)
            with anyio.CancelScope(shield=True):
                close = getattr(self._frames, "aclose", None)
                if close is not None:
                    await close()
                if self._shut_down and self._started and not self._complete:
                    closing = self._closing(self._events_sent).encode()
                    with suppress(Exception):  # the client is gone too
                        await send(
                            {"type": "http.response.body", "body": closing, "more_body": False}
                        )
            self.finished.set()


async def end_open_streams(streams: set[EventStream], settle_seconds: float) -> None:
    """Give open streams ``settle_seconds`` to end by themselves, then end the rest with
    their closing events (and give those as long to be sent)."""
    with anyio.move_on_after(settle_seconds):
        for stream in list(streams):
            await stream.finished.wait()
    left = list(streams)
    for stream in left:
        stream.end_for_shutdown()
    with anyio.move_on_after(settle_seconds):
        for stream in left:
            await stream.finished.wait()
