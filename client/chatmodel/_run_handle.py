"""Handles on a run by its uuid: :class:`RunHandle` (sync) and :class:`AsyncRunHandle`.

``run(background=True)`` returns one for the run it started, ``ChatModel.get_run(uuid)``
one for any run. Each method is one ``_runs`` operation (or, for ``events()``, one
followed stream), driven by the ChatModel's ``_transport``.
"""

from __future__ import annotations

import asyncio
import time

from chatmodel import _runs as runs
from chatmodel._models import LLMResponse, RunState
from chatmodel._transport import AsyncStreamChunks, StreamChunks, Transport


class RunHandle:
    """A run on the server, by its uuid; it goes on whether or not anyone holds this.

    * ``status()``: the run as it stands now (:class:`RunState`);
    * ``wait(timeout=None)``: its ``LLMResponse`` once it has ended;
    * ``events()``: its ``LLMStreamResponse`` chunks, live, from the first to the last
      (``done=True``); resumed by itself when the connection drops;
    * ``cancel()``: stop it (nothing is stored for its reply); a run that has ended is
      answered unchanged.

    ``status``, ``wait`` and ``cancel`` raise ``ChatModelError`` subclasses, as the
    ChatModel's reads do (``RunNotFound``, ``APIConnectionError`` after two resends, ...);
    ``wait`` also ``RunWaitTimeout``. ``events()`` never raises: a failure is its last
    chunk, ``done=True, error=True``.
    """

    def __init__(self, run_uuid: str, transport: Transport) -> None:
        self._uuid = run_uuid
        self._transport = transport

    @property
    def uuid(self) -> str:
        """The run's uuid: save it and pass it to ``ChatModel.get_run`` to come back to it."""
        return self._uuid

    def __repr__(self) -> str:
        return f"{type(self).__name__}(uuid={self._uuid!r})"

    def status(self) -> RunState:
        """The run as the server has it now (one request)."""
        return self._transport.call(runs.get_run(self._uuid))

    def wait(self, timeout: float | None = None) -> LLMResponse:
        """The run's result once it has ended: its ``LLMResponse`` (``error=True`` for a
        run that failed or was cancelled, as ``run()`` reports it).

        Asks for the run's state after pauses that grow from 0.1 s to 2 s. ``timeout``:
        seconds to wait at most (``None``: as long as it takes; ``0``: look once); past
        it, raises ``RunWaitTimeout`` (a ``TimeoutError``) holding the run's last state.
        The run goes on: wait again, or ``cancel()`` it.
        """
        waiting = runs.RunWait.starting(self._uuid, timeout, time.monotonic())
        while True:
            state = self.status()
            pause = waiting.pause_after(state, time.monotonic())
            if pause is None:
                return runs.run_result(state)
            time.sleep(pause)

    def events(self) -> StreamChunks:
        """The run's events, as a generator of ``LLMStreamResponse`` (the request starts when
        you iterate it): from its first, live while it runs, to its last (``done=True``,
        the whole result, as a stream's last chunk carries it). A run that streams on the
        server (``run(background=True, stream=True)``) sends its reply's pieces; any other
        run only that last chunk, when it ends. They are kept on the server for a while
        after the run, so this can be read more than once, and after the run has ended.

        A dropped connection is resumed from the last event given out (``Last-Event-ID``),
        up to 5 reconnections in a row without a new event: every event comes once, in
        order. Never raises: a failure is a last chunk with ``done=True, error=True``
        (``run_not_found``, ``api_connection_error``, ...). Stopping early only stops
        following: the run goes on (``cancel()`` stops it).
        """
        return self._transport.follow(self._uuid)

    def cancel(self) -> RunState:
        """Stop the run: its model call is closed, nothing is stored for its reply, and its
        status becomes ``cancelled``. A run that has ended is answered as it is."""
        return self._transport.call(runs.cancel_run(self._uuid))


class AsyncRunHandle:
    """:class:`RunHandle` for asyncio: ``await handle.status()``, ``await handle.wait()``,
    ``async for chunk in handle.events()``, ``await handle.cancel()``. Returned by
    ``arun(background=True)`` and ``ChatModel.aget_run(uuid)``."""

    def __init__(self, run_uuid: str, transport: Transport) -> None:
        self._uuid = run_uuid
        self._transport = transport

    @property
    def uuid(self) -> str:
        """The run's uuid: save it and pass it to ``ChatModel.aget_run`` to come back to it."""
        return self._uuid

    def __repr__(self) -> str:
        return f"{type(self).__name__}(uuid={self._uuid!r})"

    async def status(self) -> RunState:
        """``RunHandle.status``."""
        return await self._transport.acall(runs.get_run(self._uuid))

    # ``timeout`` as RunHandle.wait has it: past it, RunWaitTimeout carries the run's state,
    # which an asyncio.timeout() around the call would lose (cancelled mid-request).
    async def wait(self, timeout: float | None = None) -> LLMResponse:  # noqa: ASYNC109
        """``RunHandle.wait``: raises ``RunWaitTimeout`` past ``timeout`` seconds."""
        waiting = runs.RunWait.starting(self._uuid, timeout, time.monotonic())
        while True:
            state = await self.status()
            pause = waiting.pause_after(state, time.monotonic())
            if pause is None:
                return runs.run_result(state)
            await asyncio.sleep(pause)

    def events(self) -> AsyncStreamChunks:
        """``RunHandle.events``: ``async for chunk in handle.events()``. Never raises."""
        return self._transport.afollow(self._uuid)

    async def cancel(self) -> RunState:
        """``RunHandle.cancel``."""
        return await self._transport.acall(runs.cancel_run(self._uuid))
