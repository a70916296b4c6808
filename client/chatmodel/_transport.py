"""Moving a ChatModel's requests: ``_protocol`` operations driven over ``httpx.Client`` (sync)
or ``httpx.AsyncClient`` (async), and event streams (a streamed run's, a run's events) read
line by line into a ``_run_stream.RunStream``, which says how to go on when one breaks.

Every request goes through here, and nothing here decides what to send or how to read
the answer: that is ``_protocol``'s, once for both.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator
from contextlib import aclosing, asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import TypeVar

import httpx

from chatmodel import _protocol as protocol
from chatmodel import _runs as runs
from chatmodel._config import ClientSettings
from chatmodel._errors import connection_error
from chatmodel._models import LLMStreamResponse
from chatmodel._protocol import Operation, Request, RunOptions, SessionState
from chatmodel._run_stream import RunStream, StreamStart

T = TypeVar("T")

StreamChunks = Generator[LLMStreamResponse, None, None]
AsyncStreamChunks = AsyncGenerator[LLMStreamResponse, None]


def drive(client: httpx.Client, settings: ClientSettings, operation: Operation[T]) -> T:
    """Send each request ``operation`` yields; return what it finally returns."""
    try:
        request = next(operation)
        while True:
            args = request.send_args(settings)
            try:
                response = client.request(**args)
            except httpx.RequestError as exc:
                request = operation.throw(connection_error(exc, args["url"]))
            else:
                request = operation.send(response)
    except StopIteration as stop:
        result: T = stop.value
        return result


async def adrive(client: httpx.AsyncClient, settings: ClientSettings, operation: Operation[T]) -> T:
    """``drive`` for asyncio."""
    try:
        request = next(operation)
        while True:
            args = request.send_args(settings)
            try:
                response = await client.request(**args)
            except httpx.RequestError as exc:
                request = operation.throw(connection_error(exc, args["url"]))
            else:
                request = operation.send(response)
    except StopIteration as stop:
        result: T = stop.value
        return result


@dataclass(frozen=True)
class Transport:
    """One ChatModel's way to the server: its settings and the clients it was given.

    Without ``http_client``/``async_http_client``, each call opens and closes its own.
    """

    settings: ClientSettings
    http_client: httpx.Client | None = None
    async_http_client: httpx.AsyncClient | None = None

    @contextmanager
    def _client(self) -> Iterator[httpx.Client]:
        if self.http_client is not None:
            yield self.http_client
        else:
            with httpx.Client() as client:
                yield client

    @asynccontextmanager
    async def _aclient(self) -> AsyncIterator[httpx.AsyncClient]:
        if self.async_http_client is not None:
            yield self.async_http_client
        else:
            async with httpx.AsyncClient() as client:
                yield client

    def call(self, operation: Operation[T]) -> T:
        with self._client() as client:
            return drive(client, self.settings, operation)

    async def acall(self, operation: Operation[T]) -> T:
        async with self._aclient() as client:
            return await adrive(client, self.settings, operation)

    def stream(self, session: SessionState, options: RunOptions) -> StreamChunks:
        """A streamed run's chunks; the last one says ``done`` (or ``error``). Never raises."""
        with self._client() as client:
            start = drive(client, self.settings, protocol.start_stream(session, options))
            yield from self._read(client, start, self._reader(start, session))

    async def astream(self, session: SessionState, options: RunOptions) -> AsyncStreamChunks:
        """``stream`` for asyncio."""
        async with self._aclient() as client:
            start = await adrive(client, self.settings, protocol.start_stream(session, options))
            # aclosing: a caller that stops early closes the reading (and cancels its run)
            # while the client is still open, as ``yield from`` does for ``stream``.
            reading = self._aread(client, start, self._reader(start, session))
            async with aclosing(reading):
                async for chunk in reading:
                    yield chunk

    def follow(self, run_uuid: str) -> StreamChunks:
        """A run's events from the first, to its end. Never raises."""
        request = runs.events_request(run_uuid, None)
        with self._client() as client:
            reader = RunStream(self.settings.url(request.path), run_uuid=run_uuid)
            yield from self._read(client, request, reader)

    async def afollow(self, run_uuid: str) -> AsyncStreamChunks:
        """``follow`` for asyncio."""
        request = runs.events_request(run_uuid, None)
        async with self._aclient() as client:
            reader = RunStream(self.settings.url(request.path), run_uuid=run_uuid)
            async with aclosing(self._aread(client, request, reader)) as reading:
                async for chunk in reading:
                    yield chunk

    def _reader(self, start: Request | LLMStreamResponse, session: SessionState) -> RunStream:
        if isinstance(start, Request):
            return RunStream(self.settings.url(start.path), start=StreamStart(session, start))
        return RunStream(self.settings.base_url)

    def _read(
        self, client: httpx.Client, start: Request | LLMStreamResponse | None, reader: RunStream
    ) -> StreamChunks:
        """Send ``start`` and read its stream into ``reader``, and whatever ``reader`` asks
        next (a resume, the request again), to the stream's end; a run this stream started
        and the caller no longer reads is cancelled (``RunStream.abandoned_run``)."""
        following: Request | LLMStreamResponse | None = start
        try:
            while isinstance(following, Request):
                if reader.pause:
                    time.sleep(reader.pause)
                args = following.send_args(self.settings)
                try:
                    with client.stream(**args) as response:
                        if not reader.accepts(response):
                            response.read()
                            decide = reader.refused(response)
                        else:
                            reader.opened(response)
                            for line in response.iter_lines():
                                chunk = reader.feed(line)
                                if chunk is not None:
                                    yield chunk
                                if reader.finished:
                                    return
                            decide = reader.broke(None)
                except httpx.RequestError as exc:
                    decide = reader.broke(connection_error(exc, args["url"]))
                following = drive(client, self.settings, decide)
            if following is not None:
                self._abandon(client, reader)  # before the last chunk, which may be the last read
                yield following
        finally:
            self._abandon(client, reader)

    async def _aread(
        self,
        client: httpx.AsyncClient,
        start: Request | LLMStreamResponse | None,
        reader: RunStream,
    ) -> AsyncStreamChunks:
        """``_read`` for asyncio."""
        following: Request | LLMStreamResponse | None = start
        try:
            while isinstance(following, Request):
                if reader.pause:
                    await asyncio.sleep(reader.pause)
                args = following.send_args(self.settings)
                try:
                    async with client.stream(**args) as response:
                        if not reader.accepts(response):
                            await response.aread()
                            decide = reader.refused(response)
                        else:
                            reader.opened(response)
                            async for line in response.aiter_lines():
                                chunk = reader.feed(line)
                                if chunk is not None:
                                    yield chunk
                                if reader.finished:
                                    return
                            decide = reader.broke(None)
                except httpx.RequestError as exc:
                    decide = reader.broke(connection_error(exc, args["url"]))
                following = await adrive(client, self.settings, decide)
            if following is not None:
                await self._aabandon(client, reader)
                yield following
        finally:
            await self._aabandon(client, reader)

    def _abandon(self, client: httpx.Client, reader: RunStream) -> None:
        run_uuid = reader.abandoned_run()
        if run_uuid is not None:
            drive(client, self.settings, runs.abandon_run(run_uuid))

    async def _aabandon(self, client: httpx.AsyncClient, reader: RunStream) -> None:
        run_uuid = reader.abandoned_run()
        if run_uuid is not None:
            await adrive(client, self.settings, runs.abandon_run(run_uuid))
