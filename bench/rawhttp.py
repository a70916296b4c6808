"""A minimal keep-alive HTTP/1.1 client on asyncio streams, for the upstream's own figures.

httpx costs a few hundred microseconds per request; measuring the upstream's ceiling
through it would measure httpx. This client sends a prepared request and reads the
answer (Content-Length or chunked) with nothing else in the way.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Timed:
    """One answer: its status, when its first and last body bytes came (seconds from send)."""

    status: int
    first: float
    last: float
    body: bytes


def post_request(path: str, port: int, body: bytes, key: str | None = None) -> bytes:
    auth = f"authorization: Bearer {key}\r\n" if key else ""
    head = (
        f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n{auth}"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class RawConnection:
    """One connection, one request at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> RawConnection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()

    async def send(self, request: bytes) -> Timed:
        started = time.perf_counter()
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        if b"content-length" in headers:
            body = await self.reader.readexactly(int(headers[b"content-length"]))
            now = time.perf_counter() - started
            return Timed(status, now, now, body)
        return await self._chunked(status, started)

    async def _chunked(self, status: int, started: float) -> Timed:
        body = bytearray()
        first = 0.0
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")
                return Timed(status, first, time.perf_counter() - started, bytes(body))
            body += await self.reader.readexactly(size + 2)
            del body[-2:]
            if not first:
                first = time.perf_counter() - started


@dataclass(frozen=True)
class Paced:
    """One streamed answer read event by event: when each event came (seconds from send)."""

    status: int
    arrivals: tuple[float, ...]  # one per SSE event (``data:`` lines), in order
    failed: bool  # not 200, an error event, or the body ended early

    @property
    def first(self) -> float:
        return self.arrivals[0] if self.arrivals else float("nan")

    @property
    def last(self) -> float:
        return self.arrivals[-1] if self.arrivals else float("nan")

    def worst_gap(self) -> float:
        """The longest pause between two consecutive events."""
        pairs = zip(self.arrivals, self.arrivals[1:], strict=False)
        return max((b - a for a, b in pairs), default=0.0)


# What marks a streamed answer as failed, in any of the three formats: an error value that
# is not null, or a Responses stream's failed or incomplete end.
FAILURE_MARKS = (
    b'"error":{',
    b'"error":"',
    b'"error":true',
    b"response.failed",
    b"response.incomplete",
)


def _failed_event(event: bytes) -> bool:
    squeezed = event.replace(b" ", b"")
    return any(mark in squeezed for mark in FAILURE_MARKS)


async def stream_events(port: int, request: bytes) -> Paced:
    """Send ``request`` on a new connection and read its chunked SSE answer to the end,
    noting when each event arrived. As cheap as a reader can be (no HTTP library), so
    hundreds of them at once measure the server, not this client."""
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    arrivals: list[float] = []
    failed = False
    try:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        if status != 200 or b"chunked" not in head.lower():
            return Paced(status, (), True)
        pending = b""  # SSE text not yet ended by a blank line
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            pending += (await reader.readexactly(size + 2))[:-2]
            now = time.perf_counter() - started
            *events, pending = pending.split(b"\n\n")
            for event in events:
                if b"data:" in event:
                    arrivals.append(now)
                    failed = failed or _failed_event(event)
        return Paced(status, tuple(arrivals), failed or bool(pending.strip()))
    except (OSError, asyncio.IncompleteReadError, ValueError):
        return Paced(0, tuple(arrivals), True)
    finally:
        writer.close()
