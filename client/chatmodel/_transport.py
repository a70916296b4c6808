"""Moving a ChatModel's requests: ``_protocol`` operations driven over ``httpx.Client`` (sync)
or ``httpx.AsyncClient`` (async), and streamed runs read line by line into a
``_run_stream.RunStream``.

Every request goes through here, and nothing here decides what to send or how to read
the answer: that is ``_protocol``'s, once for both.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import TypeVar

import httpx

from chatmodel import _protocol as protocol
from chatmodel._config import ClientSettings
from chatmodel._errors import connection_error
from chatmodel._models import LLMStreamResponse
from chatmodel._protocol import Operation, Request, RunOptions, SessionState
from chatmodel._run_stream import RunStream

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
            start: Request | LLMStreamResponse | None = drive(
                client, self.settings, protocol.start_stream(session, options)
            )
            while isinstance(start, Request):  # once more only if the refusal made the session
                request, refused = start, None
                args = request.send_args(self.settings)
                reader = RunStream(args["url"])
                try:
                    with client.stream(**args) as response:
                        if not reader.accepts(response):
                            response.read()
                            refused = response
                        else:
                            session.created = True  # it has the session: see SessionState
                            for line in response.iter_lines():
                                chunk = reader.feed(line)
                                if chunk is not None:
                                    yield chunk
                                if reader.finished:
                                    return
                except httpx.RequestError as exc:
                    start = reader.fail(connection_error(exc, args["url"]))
                else:
                    start = reader.end() if refused is None else None
                if refused is not None:
                    start = drive(
                        client, self.settings, protocol.refused_stream(session, request, refused)
                    )
            if start is not None:
                yield start

    async def astream(self, session: SessionState, options: RunOptions) -> AsyncStreamChunks:
        """``stream`` for asyncio."""
        async with self._aclient() as client:
            start: Request | LLMStreamResponse | None = await adrive(
                client, self.settings, protocol.start_stream(session, options)
            )
            while isinstance(start, Request):  # once more only if the refusal made the session
                request, refused = start, None
                args = request.send_args(self.settings)
                reader = RunStream(args["url"])
                try:
                    async with client.stream(**args) as response:
                        if not reader.accepts(response):
                            await response.aread()
                            refused = response
                        else:
                            session.created = True  # it has the session: see SessionState
                            async for line in response.aiter_lines():
                                chunk = reader.feed(line)
                                if chunk is not None:
                                    yield chunk
                                if reader.finished:
                                    return
                except httpx.RequestError as exc:
                    start = reader.fail(connection_error(exc, args["url"]))
                else:
                    start = reader.end() if refused is None else None
                if refused is not None:
                    operation = protocol.refused_stream(session, request, refused)
                    start = await adrive(client, self.settings, operation)
            if start is not None:
                yield start
