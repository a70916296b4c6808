"""ChatModel: one conversation (session) with a named chat model.

This module is the public surface only: every method builds a ``_protocol`` operation and
hands it to the ChatModel's ``_transport.Transport``, which drives it with ``httpx.Client``
(sync methods) or ``httpx.AsyncClient`` (``a``-prefixed methods).
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Literal, overload

import httpx

from chatmodel import _feedback as feedback
from chatmodel import _protocol as protocol
from chatmodel import _runs as runs
from chatmodel._config import TimeoutTypes, resolve_settings
from chatmodel._feedback import ScoreValue
from chatmodel._models import (
    ChatModelConfig,
    Feedback,
    LLMResponse,
    Message,
    MessagePage,
    Session,
)
from chatmodel._protocol import IfBusy, MessageOrder, RunOptions, SessionState
from chatmodel._run_handle import AsyncRunHandle, RunHandle
from chatmodel._transport import AsyncStreamChunks, StreamChunks, Transport


class ChatModel:
    """A session with the chat model ``name``.

    Without ``session_uuid`` a new session is made on the first ``add_messages``/``run``,
    pinned to ``version`` (a label's current release: ``"deploy"``, the published one, also
    spelled ``"production"``; ``"staging"`` or an admin-defined label; or ``"latest"``, or
    a number),
    with ``variables`` (a value for each template variable the version declares) and
    ``metadata`` (``metadata["user_id"]`` keeps a user on one side of an A/B split); its
    uuid, ``session_uuid``, is chosen at once. With ``session_uuid`` it continues that
    session (which keeps its own pinned version), or, if the server has no session under
    that uuid, makes it on the first ``add_messages``/``run`` the same way. Reading a named
    session that has not been made raises ``SessionNotFound``.

    ``run``/``arun`` never raise: a failure is an ``LLMResponse`` with ``error=True`` (or,
    streamed, one last chunk with ``done=True, error=True``); only a background run that
    could not be started raises (there is no run to hand back). The other methods raise
    ``ChatModelError`` subclasses. ``run(background=True)`` and ``get_run(uuid)`` return a
    :class:`RunHandle` on a run that goes on on the server.

    Without ``http_client``/``async_http_client``, each call opens and closes its own
    connection; pass clients to reuse connections (URL, key and timeout still come from
    this ChatModel's settings).
    """

    def __init__(
        self,
        name: str,
        session_uuid: str | uuid.UUID | None = None,
        version: Literal["deploy", "production", "staging", "latest"] | int | str = "deploy",
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: TimeoutTypes | None = None,
        http_client: httpx.Client | None = None,
        async_http_client: httpx.AsyncClient | None = None,
        variables: Mapping[str, str] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.version = version
        self._transport = Transport(
            resolve_settings(base_url, api_key, timeout), http_client, async_http_client
        )
        named = session_uuid is not None
        self._session = SessionState(
            chat_model=name,
            version=version,
            uuid=uuid.UUID(str(session_uuid)) if named else uuid.uuid4(),
            named=named,
            variables=variables,
            metadata=metadata,
        )

    def __repr__(self) -> str:
        return (
            f"ChatModel({self.name!r}, session_uuid={self.session_uuid!r}, "
            f"version={self.version!r}, base_url={self.base_url!r})"
        )

    @property
    def session_uuid(self) -> str:
        """The session's uuid, fixed when this ChatModel is made (the one given, else a fresh
        one), whether or not the session has been written yet: it can be saved and passed to
        ``ChatModel(name, session_uuid)`` later."""
        return str(self._session.uuid)

    @property
    def base_url(self) -> str:
        return self._transport.settings.base_url

    # -- config and messages ------------------------------------------------------------

    def get_config(self) -> ChatModelConfig:
        """The version's system prompt and details; with a session, its pinned version and
        its messages (``message_logs``). Does not create a session."""
        return self._transport.call(protocol.get_config(self._session))

    async def aget_config(self) -> ChatModelConfig:
        return await self._transport.acall(protocol.get_config(self._session))

    def add_messages(self, messages: Sequence[Mapping[str, Any]]) -> list[Message]:
        """Append messages (OpenAI chat format) to the session; returns them as stored.

        A message without ``uuid`` gets a fresh one, so the request can be resent safely
        after a transport error (it is, twice) without storing anything twice.
        """
        return self._transport.call(protocol.add_messages(self._session, messages))

    async def aadd_messages(self, messages: Sequence[Mapping[str, Any]]) -> list[Message]:
        return await self._transport.acall(protocol.add_messages(self._session, messages))

    def list_messages(
        self,
        *,
        after: int | None = None,
        before: int | None = None,
        order: MessageOrder | None = None,
        limit: int | None = None,
    ) -> MessagePage:
        """A page of the session's messages with ``after < seq < before`` (each optional),
        ``data`` oldest first. Read forwards from the oldest (``order="asc"``, the default)
        following ``next_after`` as ``after=``, or backwards from the newest
        (``order="desc"``, the default when only ``before`` is given) following
        ``next_before`` as ``before=``, while ``has_more``. ``limit``: 1 to 1000 (server
        default 100). Before a new session is made, an empty page (nothing is asked).
        """
        operation = protocol.list_messages(
            self._session, after=after, before=before, order=order, limit=limit
        )
        return self._transport.call(operation)

    async def alist_messages(
        self,
        *,
        after: int | None = None,
        before: int | None = None,
        order: MessageOrder | None = None,
        limit: int | None = None,
    ) -> MessagePage:
        operation = protocol.list_messages(
            self._session, after=after, before=before, order=order, limit=limit
        )
        return await self._transport.acall(operation)

    # -- session tools ------------------------------------------------------------------

    def fork(
        self,
        at_message_uuid: str | uuid.UUID | None = None,
        *,
        at_seq: int | None = None,
        session_uuid: str | uuid.UUID | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Session:
        """Copy the session's messages up to and including ``at_message_uuid`` (or those
        with ``seq <= at_seq``; default: all of them) into a new session on the same version
        and variables; returns the new session. Continue it with
        ``ChatModel(name, fork.uuid)``. This session is unchanged.

        The fork's uuid is ``session_uuid``, else a fresh one, so the request is resent
        safely (twice at most) when no answer came back: forking again with the same
        ``session_uuid`` at the same point returns that fork. ``metadata`` replaces the
        original's. A point the session does not have raises ``InvalidInputError``.
        """
        operation = protocol.fork(
            self._session,
            at_message_uuid=at_message_uuid,
            at_seq=at_seq,
            session_uuid=session_uuid,
            metadata=metadata,
        )
        return self._transport.call(operation)

    async def afork(
        self,
        at_message_uuid: str | uuid.UUID | None = None,
        *,
        at_seq: int | None = None,
        session_uuid: str | uuid.UUID | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Session:
        operation = protocol.fork(
            self._session,
            at_message_uuid=at_message_uuid,
            at_seq=at_seq,
            session_uuid=session_uuid,
            metadata=metadata,
        )
        return await self._transport.acall(operation)

    def delete_session(self, *, force: bool = False) -> None:
        """Delete the session with its messages and runs (its forks stay). Afterwards this
        ChatModel's calls find no session: they raise ``SessionNotFound`` and runs come back
        with ``error_type="session_not_found"``.

        While a run holds the session this raises ``SessionBusyError`` (a ``ConflictError``,
        code ``session_busy``) unless ``force=True``; that run then stores nothing. A delete
        that got no answer is resent (twice at most); ``SessionNotFound`` is raised only when
        there was no such session.
        """
        self._transport.call(protocol.delete_session(self._session, force=force))

    async def adelete_session(self, *, force: bool = False) -> None:
        await self._transport.acall(protocol.delete_session(self._session, force=force))

    # -- feedback -----------------------------------------------------------------------

    def log_score(
        self,
        name: str,
        value: ScoreValue,
        *,
        message_uuid: str | uuid.UUID | None = None,
        comment: str | None = None,
        by: str | None = None,
        id: str | uuid.UUID | None = None,
    ) -> Feedback:
        """Score the session's last reply (or the message ``message_uuid``): ``name`` such
        as ``"thumbs"``, ``value`` true/false, a number or a category (text); ``comment``
        and ``by`` (who gave it, in your terms) are optional. Returns the stored
        :class:`Feedback`.

        The feedback is kept under ``id`` (default: a fresh one, so a resend after no answer
        stores it once): passing the same ``id`` again updates it. Without ``message_uuid``
        the newest assistant reply is looked up first (regenerated ones skipped);
        ``NothingToScore`` if there is none. ``MessageNotFound`` for a message the session
        does not have; ``ConflictError`` (``field="id"``) for an ``id`` given to another
        message or session.
        """
        operation = feedback.log_score(
            self._session,
            name,
            value,
            message_uuid=message_uuid,
            comment=comment,
            by=by,
            feedback_id=id,
        )
        return self._transport.call(operation)

    async def alog_score(
        self,
        name: str,
        value: ScoreValue,
        *,
        message_uuid: str | uuid.UUID | None = None,
        comment: str | None = None,
        by: str | None = None,
        id: str | uuid.UUID | None = None,
    ) -> Feedback:
        operation = feedback.log_score(
            self._session,
            name,
            value,
            message_uuid=message_uuid,
            comment=comment,
            by=by,
            feedback_id=id,
        )
        return await self._transport.acall(operation)

    def log_score_to_session(
        self,
        name: str,
        value: ScoreValue,
        *,
        comment: str | None = None,
        by: str | None = None,
        id: str | uuid.UUID | None = None,
    ) -> Feedback:
        """Score the whole session (e.g. ``"resolved"``), as ``log_score`` scores a reply;
        a new session is made first, as a write makes it."""
        operation = feedback.log_score_to_session(
            self._session, name, value, comment=comment, by=by, feedback_id=id
        )
        return self._transport.call(operation)

    async def alog_score_to_session(
        self,
        name: str,
        value: ScoreValue,
        *,
        comment: str | None = None,
        by: str | None = None,
        id: str | uuid.UUID | None = None,
    ) -> Feedback:
        operation = feedback.log_score_to_session(
            self._session, name, value, comment=comment, by=by, feedback_id=id
        )
        return await self._transport.acall(operation)

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
        background: Literal[False] = False,
        function_call: str | Mapping[str, Any] | None = None,
        if_busy: IfBusy | None = None,
        wait_seconds: float | None = None,
        regenerate: bool = False,
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
        background: Literal[False] = False,
        function_call: str | Mapping[str, Any] | None = None,
        if_busy: IfBusy | None = None,
        wait_seconds: float | None = None,
        regenerate: bool = False,
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
        background: Literal[True],
        function_call: str | Mapping[str, Any] | None = None,
        if_busy: IfBusy | None = None,
        wait_seconds: float | None = None,
        regenerate: bool = False,
    ) -> RunHandle: ...

    @overload
    def run(
        self,
        functions: Sequence[Mapping[str, Any]] | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: str | Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        stream: bool = False,
        *,
        background: bool = False,
        function_call: str | Mapping[str, Any] | None = None,
        if_busy: IfBusy | None = None,
        wait_seconds: float | None = None,
        regenerate: bool = False,
    ) -> LLMResponse | StreamChunks | RunHandle: ...

    def run(
        self,
        functions: Sequence[Mapping[str, Any]] | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: str | Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        stream: bool = False,
        *,
        background: bool = False,
        function_call: str | Mapping[str, Any] | None = None,
        if_busy: IfBusy | None = None,
        wait_seconds: float | None = None,
        regenerate: bool = False,
    ) -> LLMResponse | StreamChunks | RunHandle:
        """Let the model answer the session; the reply is stored and returned.

        ``functions``/``tools`` replace the version's defaults and ``params`` override its
        parameters, for this run only. With ``stream=True``, returns a generator of
        ``LLMStreamResponse`` chunks (the request starts when you iterate it). Never raises
        (but with ``background=True``, below).

        One run at a time per session: while another run holds it, this one comes back with
        ``error_type="session_busy"`` (``if_busy="reject"``, the server's default), or with
        ``if_busy="wait"`` waits up to ``wait_seconds`` (server default 30) for it first.

        Each run is sent with a fresh ``Idempotency-Key``. A plain run that got no answer
        (dropped connection, timeout) is resent with the same key, twice at most, and waits
        for the first attempt if that is still running: the server returns the stored result
        instead of calling the model again, so nothing is answered or stored twice.

        A stream survives a dropped connection: the run goes on on the server
        (``on_disconnect: continue``) and the stream picks up after the last chunk it gave
        out, from the run's events (``GET /v1/runs/{uuid}/events`` with ``Last-Event-ID``),
        so every chunk comes once and the last one carries the stored result. Up to 5
        reconnections in a row that bring nothing new, after pauses of 0.2 to 3.2 s; then it
        ends with an error chunk (``api_connection_error``) and the run is cancelled.
        Stopping early (``break``, ``close()``) cancels the run at once
        (``POST /v1/runs/{uuid}/cancel``): nothing is stored for its reply and the session
        is free for the next run.

        ``background=True`` returns a :class:`RunHandle` as soon as the server has started
        the run, which goes on on the server: ``handle.wait()`` gives its ``LLMResponse``,
        ``handle.status()`` its state, ``handle.events()`` its chunks, ``handle.cancel()``
        stops it. With ``stream=True`` too, the model's reply is streamed on the server and
        ``handle.events()`` gives its pieces live, as a stream would; without, its events
        are only its end. A background start that fails has no run to hand back, so it
        raises, as ``add_messages`` does: ``SessionBusyError`` (``session_busy``), another
        ``APIError``, or ``APIConnectionError`` once its two resends (same key: never a
        second run) got no answer either.

        ``regenerate=True`` answers the last reply again: the session's newest message must
        be an assistant reply (else ``error_type="nothing_to_regenerate"``); it stays in the
        history, marked ``superseded``, and is never sent to the model again.
        """
        options = RunOptions(
            functions, tools, tool_choice, function_call, params, if_busy, wait_seconds, regenerate
        )
        if background:
            operation = runs.start_background_run(self._session, options, stream=stream)
            return RunHandle(self._transport.call(operation), self._transport)
        if stream:
            return self._transport.stream(self._session, options)
        return self._transport.call(protocol.run(self._session, options))

    @overload
    async def arun(
        self,
        functions: Sequence[Mapping[str, Any]] | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: str | Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        stream: Literal[False] = False,
        *,
        background: Literal[False] = False,
        function_call: str | Mapping[str, Any] | None = None,
        if_busy: IfBusy | None = None,
        wait_seconds: float | None = None,
        regenerate: bool = False,
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
        background: Literal[False] = False,
        function_call: str | Mapping[str, Any] | None = None,
        if_busy: IfBusy | None = None,
        wait_seconds: float | None = None,
        regenerate: bool = False,
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
        background: Literal[True],
        function_call: str | Mapping[str, Any] | None = None,
        if_busy: IfBusy | None = None,
        wait_seconds: float | None = None,
        regenerate: bool = False,
    ) -> AsyncRunHandle: ...

    @overload
    async def arun(
        self,
        functions: Sequence[Mapping[str, Any]] | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: str | Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        stream: bool = False,
        *,
        background: bool = False,
        function_call: str | Mapping[str, Any] | None = None,
        if_busy: IfBusy | None = None,
        wait_seconds: float | None = None,
        regenerate: bool = False,
    ) -> LLMResponse | AsyncStreamChunks | AsyncRunHandle: ...

    async def arun(
        self,
        functions: Sequence[Mapping[str, Any]] | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: str | Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        stream: bool = False,
        *,
        background: bool = False,
        function_call: str | Mapping[str, Any] | None = None,
        if_busy: IfBusy | None = None,
        wait_seconds: float | None = None,
        regenerate: bool = False,
    ) -> LLMResponse | AsyncStreamChunks | AsyncRunHandle:
        """``run`` for asyncio. Streamed: ``async for chunk in await session.arun(stream=True)``.
        In the background: ``handle = await session.arun(background=True)``, an
        :class:`AsyncRunHandle` (``await handle.wait()``).

        Breaking out of the loop closes the response (and cancels the run) when the
        generator is finalized; wrap it in ``contextlib.aclosing`` to do so at once. Never
        raises, but with ``background=True`` (see ``run``).
        """
        options = RunOptions(
            functions, tools, tool_choice, function_call, params, if_busy, wait_seconds, regenerate
        )
        if background:
            operation = runs.start_background_run(self._session, options, stream=stream)
            return AsyncRunHandle(await self._transport.acall(operation), self._transport)
        if stream:
            return self._transport.astream(self._session, options)
        return await self._transport.acall(protocol.run(self._session, options))

    def get_run(self, run_uuid: str | uuid.UUID) -> RunHandle:
        """A handle on any run of this API key's project by its uuid (``RunHandle.uuid``,
        ``detail.run_uuid``, ``X-Run-Id``), of this session or another. Asks for the run once,
        so an unknown uuid raises ``RunNotFound`` here rather than later."""
        handle = RunHandle(str(uuid.UUID(str(run_uuid))), self._transport)
        handle.status()
        return handle

    async def aget_run(self, run_uuid: str | uuid.UUID) -> AsyncRunHandle:
        """``get_run`` for asyncio: an :class:`AsyncRunHandle`."""
        handle = AsyncRunHandle(str(uuid.UUID(str(run_uuid))), self._transport)
        await handle.status()
        return handle

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
