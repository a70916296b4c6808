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


def post_request(path: str, port: int, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n"
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
