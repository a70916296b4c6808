"""ChatModel: one conversation (session) with a named chat model.

This module only moves requests: every call builds a ``_protocol`` operation and drives it
with ``httpx.Client`` (sync methods) or ``httpx.AsyncClient`` (``a``-prefixed methods).
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any, Literal, TypeVar, overload

import httpx

from chatmodel import _protocol as protocol
from chatmodel._config import ClientSettings, TimeoutTypes, resolve_settings
from chatmodel._models import ChatModelConfig, LLMResponse, LLMStreamResponse, Message
from chatmodel._protocol import IfBusy, Operation, RunOptions, RunStream, SessionState

T = TypeVar("T")

StreamChunks = Generator[LLMStreamResponse, None, None]
AsyncStreamChunks = AsyncGenerator[LLMStreamResponse, None]


def _drive(client: httpx.Client, settings: ClientSettings, operation: Operation[T]) -> T:
    try:
        request = next(operation)
        while True:
            args = request.send_args(settings)
            try:
                response = client.request(**args)
            except httpx.RequestError as exc:
                request = operation.throw(protocol.connection_error(exc, args["url"]))
            else:
                request = operation.send(response)
    except StopIteration as stop:
        result: T = stop.value
        return result


async def _adrive(
    client: httpx.AsyncClient, settings: ClientSettings, operation: Operation[T]
) -> T:
    try:
        request = next(operation)
        while True:
            args = request.send_args(settings)
            try:
                response = await client.request(**args)
            except httpx.RequestError as exc:
                request = operation.throw(protocol.connection_error(exc, args["url"]))
            else:
                request = operation.send(response)
    except StopIteration as stop:
        result: T = stop.value
        return result


class ChatModel:
    """A session with the chat model ``name``.

    Without ``session_uuid`` a new session is made on the first ``add_messages``/``run``,
    pinned to ``version`` (``"deploy"``: the published one, ``"latest"``, or a number).
    With ``session_uuid`` it continues that session (which keeps its own pinned version).

    ``run``/``arun`` never raise: a failure is an ``LLMResponse`` with ``error=True`` (or,
    streamed, one last chunk with ``done=True, error=True``). The other methods raise
    ``ChatModelError`` subclasses.

    Without ``http_client``/``async_http_client``, each call opens and closes its own
    connection; pass clients to reuse connections (URL, key and timeout still come from
    this ChatModel's settings).
    """

    def __init__(
        self,
        name: str,
        session_uuid: str | uuid.UUID | None = None,
        version: Literal["deploy", "latest"] | int | str = "deploy",
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: TimeoutTypes | None = None,
        http_client: httpx.Client | None = None,
        async_http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.name = name
        self.version = version
        self._settings = resolve_settings(base_url, api_key, timeout)
        self._http_client = http_client
        self._async_http_client = async_http_client
        resumed = session_uuid is not None
        self._session = SessionState(
            chat_model=name,
            version=version,
            uuid=uuid.UUID(str(session_uuid)) if resumed else uuid.uuid4(),
            created=resumed,
        )

    def __repr__(self) -> str:
        return (
            f"ChatModel({self.name!r}, session_uuid={self.session_uuid!r}, "
            f"version={self.version!r}, base_url={self.base_url!r})"
        )

    @property
    def session_uuid(self) -> str | None:
        """The session's uuid; ``None`` until a new session has been made."""
        return str(self._session.uuid) if self._session.created else None

    @property
    def base_url(self) -> str:
        return self._settings.base_url

    # -- transport ----------------------------------------------------------------------

    @contextmanager
    def _client(self) -> Iterator[httpx.Client]:
        if self._http_client is not None:
            yield self._http_client
        else:
            with httpx.Client() as client:
                yield client

    @asynccontextmanager
    async def _aclient(self) -> AsyncIterator[httpx.AsyncClient]:
        if self._async_http_client is not None:
            yield self._async_http_client
        else:
            async with httpx.AsyncClient() as client:
                yield client

    def _call(self, operation: Operation[T]) -> T:
        with self._client() as client:
            return _drive(client, self._settings, operation)

    async def _acall(self, operation: Operation[T]) -> T:
        async with self._aclient() as client:
            return await _adrive(client, self._settings, operation)

    def _stream(self, options: RunOptions) -> StreamChunks:
        with self._client() as client:
            start = _drive(client, self._settings, protocol.start_stream(self._session, options))
            if isinstance(start, LLMStreamResponse):
                yield start
                return
            args = start.send_args(self._settings)
            reader = RunStream(args["url"])
            try:
                with client.stream(**args) as response:
                    if not reader.accepts(response):
                        response.read()
                        yield reader.refused(response)
                        return
                    for line in response.iter_lines():
                        chunk = reader.feed(line)
                        if chunk is not None:
                            yield chunk
                        if reader.finished:
                            return
            except httpx.RequestError as exc:
                failure = reader.fail(protocol.connection_error(exc, args["url"]))
            else:
                failure = reader.end()
            if failure is not None:
                yield failure

    async def _astream(self, options: RunOptions) -> AsyncStreamChunks:
        async with self._aclient() as client:
            start = await _adrive(
                client, self._settings, protocol.start_stream(self._session, options)
            )
            if isinstance(start, LLMStreamResponse):
                yield start
                return
            args = start.send_args(self._settings)
            reader = RunStream(args["url"])
            try:
                async with client.stream(**args) as response:
                    if not reader.accepts(response):
                        await response.aread()
                        yield reader.refused(response)
                        return
                    async for line in response.aiter_lines():
                        chunk = reader.feed(line)
                        if chunk is not None:
                            yield chunk
                        if reader.finished:
                            return
            except httpx.RequestError as exc:
                failure = reader.fail(protocol.connection_error(exc, args["url"]))
            else:
                failure = reader.end()
            if failure is not None:
                yield failure

    # -- config and messages ------------------------------------------------------------

    def get_config(self) -> ChatModelConfig:
        """The version's system prompt and details; with a session, its pinned version and
        its messages (``message_logs``). Does not create a session."""
        return self._call(protocol.get_config(self._session))

    async def aget_config(self) -> ChatModelConfig:
        return await self._acall(protocol.get_config(self._session))

    def add_messages(self, messages: Sequence[Mapping[str, Any]]) -> list[Message]:
        """Append messages (OpenAI chat format) to the session; returns them as stored.

        A message without ``uuid`` gets a fresh one, so the request can be resent safely
        after a transport error (it is, twice) without storing anything twice.
        """
        return self._call(protocol.add_messages(self._session, messages))

    async def aadd_messages(self, messages: Sequence[Mapping[str, Any]]) -> list[Message]:
        return await self._acall(protocol.add_messages(self._session, messages))

    # -- runs ---------------------------------------------------------------------------

    @overload
    def run(
        self,
        functions: Sequence[Mapping[str, Any]] | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: str | Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        stream: Literal[False] = False,
        *,
        function_call: str | Mapping[str, Any] | None = None,
        if_busy: IfBusy | None = None,
        wait_seconds: float | None = None,
    ) -> LLMResponse: ...

    @overload
    def run(
        self,
        functions: Sequence[Mapping[str, Any]] | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: str | Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        *,
        stream: Literal[True],
        function_call: str | Mapping[str, Any] | None = None,
        if_busy: IfBusy | None = None,
        wait_seconds: float | None = None,
    ) -> StreamChunks: ...

    @overload
    def run(
        self,
        functions: Sequence[Mapping[str, Any]] | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: str | Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        stream: bool = False,
        *,
        function_call: str | Mapping[str, Any] | None = None,
        if_busy: IfBusy | None = None,
        wait_seconds: float | None = None,
    ) -> LLMResponse | StreamChunks: ...

    def run(
        self,
        functions: Sequence[Mapping[str, Any]] | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: str | Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        stream: bool = False,
        *,
        function_call: str | Mapping[str, Any] | None = None,
        if_busy: IfBusy | None = None,
        wait_seconds: float | None = None,
    ) -> LLMResponse | StreamChunks:
        """Let the model answer the session; the reply is stored and returned.

        ``functions``/``tools`` replace the version's defaults and ``params`` override its
        parameters, for this run only. With ``stream=True``, returns a generator of
        ``LLMStreamResponse`` chunks (the request starts when you iterate it). Never raises.

        One run at a time per session: while another run holds it, this one comes back with
        ``error_type="session_busy"`` (``if_busy="reject"``, the server's default), or with
        ``if_busy="wait"`` waits up to ``wait_seconds`` (server default 30) for it first.
        Breaking out of a stream closes its response, and the server ends that run (storing
        no reply) a moment later: a run started right after may need ``if_busy="wait"``.

        Each run is sent with a fresh ``Idempotency-Key``. A plain run that got no answer
        (dropped connection, timeout) is resent with the same key, twice at most, and waits
        for the first attempt if that is still running: the server returns the stored result
        instead of calling the model again, so nothing is answered or stored twice. A stream
        is not resent (its pieces cannot be replayed); it ends with an error chunk.
        """
        options = RunOptions(
            functions, tools, tool_choice, function_call, params, if_busy, wait_seconds
        )
        if stream:
            return self._stream(options)
        return self._call(protocol.run(self._session, options))

    @overload
    async def arun(
        self,
        functions: Sequence[Mapping[str, Any]] | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: str | Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        stream: Literal[False] = False,
        *,
        function_call: str | Mapping[str, Any] | None = None,
        if_busy: IfBusy | None = None,
        wait_seconds: float | None = None,
    ) -> LLMResponse: ...

    @overload
    async def arun(
        self,
        functions: Sequence[Mapping[str, Any]] | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: str | Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        *,
        stream: Literal[True],
        function_call: str | Mapping[str, Any] | None = None,
        if_busy: IfBusy | None = None,
        wait_seconds: float | None = None,
    ) -> AsyncStreamChunks: ...

    @overload
    async def arun(
        self,
        functions: Sequence[Mapping[str, Any]] | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: str | Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        stream: bool = False,
        *,
        function_call: str | Mapping[str, Any] | None = None,
        if_busy: IfBusy | None = None,
        wait_seconds: float | None = None,
    ) -> LLMResponse | AsyncStreamChunks: ...

    async def arun(
        self,
        functions: Sequence[Mapping[str, Any]] | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: str | Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        stream: bool = False,
        *,
        function_call: str | Mapping[str, Any] | None = None,
        if_busy: IfBusy | None = None,
        wait_seconds: float | None = None,
    ) -> LLMResponse | AsyncStreamChunks:
        """``run`` for asyncio. Streamed: ``async for chunk in await session.arun(stream=True)``.

        Breaking out of the loop closes the response when the generator is finalized; wrap
        it in ``contextlib.aclosing`` to close it at once. Never raises.
        """
        options = RunOptions(
            functions, tools, tool_choice, function_call, params, if_busy, wait_seconds
        )
        if stream:
            return self._astream(options)
        return await self._acall(protocol.run(self._session, options))

    # -- deprecated ---------------------------------------------------------------------

    def get_prompts(self) -> list[dict[str, Any]]:
        """Deprecated: use ``get_config().system_prompt``.

        The system prompt as ``[{"role": "system", "content": ...}]``."""
        warnings.warn(
            "ChatModel.get_prompts() is deprecated; use get_config().system_prompt",
            DeprecationWarning,
            stacklevel=2,
        )
        return protocol.prompts(self.get_config())

    def get_messages(self) -> list[dict[str, Any]]:
        """Deprecated: use ``get_config().message_logs``.

        The system prompt, then the session's messages, as OpenAI chat dicts."""
        warnings.warn(
            "ChatModel.get_messages() is deprecated; use get_config().message_logs",
            DeprecationWarning,
            stacklevel=2,
        )
        return protocol.chat_log(self.get_config())
