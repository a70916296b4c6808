"""Background runs, reading a run by its uuid, and cancelling one.

A background run (``"background": true``) starts as any run does, in the request: the
session claimed under its lease (one run at a time), the request's messages stored, the
prompt fitted. The request is then answered (202, the run ``running``) and the model call
goes on in a task of this process, under the same lease and heartbeat, and is stored by
the same finish phase as a foreground run, its result kept on the run record for
``GET /v1/runs/{uuid}``.

Nothing stays ``running`` for ever: a server that stops cancels its background runs
(recorded ``interrupted``); one that dies leaves a lease that lapses, and the run is marked
``interrupted`` by every live server's sweep as it lapses (within one lease of the death),
by whoever takes the session next or by the next server start, as for any run.

Cancelling (``POST /v1/runs/{uuid}/cancel``, from any process) marks the run ``cancelled``
and frees the session in one transaction. The process running it then stores nothing for
it: the run no longer holds its lease. In this process its task is cancelled at once (the
model call is closed); in another, the run's heartbeat finds the lease gone within a third
of a lease and cancels its call there. Cancelling a run that has finished changes nothing
and answers its state.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable
from contextlib import aclosing, suppress
from dataclasses import replace
from datetime import timedelta
from typing import Any

import anyio
from sqlalchemy.ext.asyncio import AsyncSession

from chatmodel_service.config import Settings
from chatmodel_service.db import Database
from chatmodel_service.errors import NotFound
from chatmodel_service.llm.gateway import LLMGateway
from chatmodel_service.llm.types import Attempt, LLMFailure, LLMOutcome, LLMResult
from chatmodel_service.models import ChatRun, SessionMessage
from chatmodel_service.models.base import utcnow
from chatmodel_service.observability.metrics import record_run
from chatmodel_service.runs.events import EventFormat, EventLog, RunEvents
from chatmodel_service.runs.idempotency import Replayed
from chatmodel_service.runs.lease import (
    RunLeftQueue,
    next_lapse,
    recover_lapsed_runs,
    released,
)
from chatmodel_service.runs.outcomes import (
    interrupted,
    outcome_response,
    outcome_values,
    response_detail,
)
from chatmodel_service.runs.records import run_out
from chatmodel_service.runs.repository import RunEventRepository, RunRepository, StoredRun
from chatmodel_service.runs.schemas import LLMResponse, RunState
from chatmodel_service.runs.service import FinishedRun, PreparedRun, complete_run
from chatmodel_service.runs.stream_run import (
    SSE_TERMINATOR,
    client_disconnected,
    last_event,
    server_shutdown,
    sse_frame,
    stream_run,
)
from chatmodel_service.sessions.repository import SessionRepository
from chatmodel_service.webhooks.outbox import queue_run_webhooks

logger = logging.getLogger(__name__)


class RunNotFound(NotFound):
    code = "run_not_found"


class BackgroundRuns:
    """The runs of this process that go on without a request waiting for them (background
    runs, and the model calls of native streams, which a reader relays), by run uuid; and
    the event log of this process's runs (``events.py``)."""

    def __init__(
        self, database: Database, settings: Settings, formats: Iterable[EventFormat] = ()
    ) -> None:
        self._database = database
        self._settings = settings
        self._tasks: dict[uuid.UUID, asyncio.Task[Any]] = {}
        self._stopping = False
        self._sweeper: asyncio.Task[None] | None = None
        self.events = EventLog(database, [NATIVE_EVENTS, *formats])

    def begin(self) -> None:
        """Start writing events, and sweeping for lapsed leases and old events."""
        self.events.begin()
        self._sweeper = asyncio.create_task(self._sweep_forever())

    def _track(self, run_id: uuid.UUID, task: asyncio.Task[Any]) -> None:
        self._tasks[run_id] = task

        def forget(done: asyncio.Task[Any]) -> None:
            if self._tasks.get(run_id) is done:  # not the task that took over from it
                del self._tasks[run_id]

        task.add_done_callback(forget)

    def start_queued(
        self,
        gateway: LLMGateway,
        run_id: uuid.UUID,
        turn: Callable[[], Awaitable[PreparedRun | Replayed]],
        stream: bool,
    ) -> None:
        """A queued background run: wait for its ``turn`` (``start_run``), then run as a
        background run does. Stopped while it waits, it is recorded ``interrupted``."""

        async def wait_then_run() -> None:
            try:
                started = await turn()
            except asyncio.CancelledError:
                with anyio.CancelScope(shield=True), suppress(Exception):
                    await _leave_queue_interrupted(self._database, run_id)
                raise
            except RunLeftQueue:  # cancelled while queued
                return
            except Exception:  # the session was deleted, the database is gone, ...
                logger.exception("queued run %s could not start", run_id)
                with suppress(Exception):
                    await _leave_queue_interrupted(self._database, run_id)
                return
            if isinstance(started, Replayed):  # its Idempotency-Key had run already
                return
            prepared = replace(started, keep_result=True)
            if stream:
                self.start_stream(self._database, gateway, prepared)
            else:
                self.start(self._database, gateway, prepared)

        self._track(run_id, asyncio.create_task(wait_then_run()))

    def start(self, database: Database, gateway: LLMGateway, prepared: PreparedRun) -> None:
        """Run a claimed run's (unstreamed) model call in the background; its one event
        is its end."""
        events = self.events.open(prepared.run_id)
        self._track(
            prepared.run_id, asyncio.create_task(self._run(database, gateway, prepared, events))
        )

    async def _run(
        self, database: Database, gateway: LLMGateway, prepared: PreparedRun, events: RunEvents
    ) -> None:
        sent_end = False
        try:
            finished = await complete_run(database, gateway, prepared, cancel_on_lost_lease=True)
            events.add(sse_frame(last_event(finished.response)))
            sent_end = True
        except asyncio.CancelledError:  # cancelled, or the server stops: recorded by then
            pass
        except Exception:  # the outcome could not be stored: the lease lapses, as on a crash
            logger.exception("background run %s could not be finished", prepared.run_id)
        finally:
            await self._end(events, prepared, sent_end)

    async def complete(
        self, database: Database, gateway: LLMGateway, prepared: PreparedRun
    ) -> FinishedRun | None:
        """A request's (unstreamed) run, its model call in a task of this process so that
        cancelling or interrupting the run closes the call at once (from another process,
        when its heartbeat finds the lease gone). None when it was cut short so: the run's
        record says how it ended. A request cancelled itself cancels its run."""
        task = asyncio.create_task(
            complete_run(database, gateway, prepared, cancel_on_lost_lease=True)
        )
        self._track(prepared.run_id, task)
        try:
            await asyncio.wait([task])
        except asyncio.CancelledError:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
            raise
        if task.cancelled():
            return None
        return task.result()

    def start_stream(
        self, database: Database, gateway: LLMGateway, prepared: PreparedRun
    ) -> RunEvents:
        """Stream a claimed run's model call into its (native) events, which readers
        relay."""
        relayed = stream_run(
            database, gateway, prepared, cancel_on_lost_lease=True, cut_short=self.cut_short
        )
        return self.start_frames(prepared, relayed, "native")

    def start_frames(
        self, prepared: PreparedRun, frames: AsyncGenerator[str], format_name: str
    ) -> RunEvents:
        """Send a claimed run's ``frames`` (its whole stream, ending with its end) into
        its events, in a task of this process: ``frames`` runs its model call, with
        ``cancel_on_lost_lease`` and ``cut_short``, in that task."""
        events = self.events.open(prepared.run_id)
        task = asyncio.create_task(self._send(prepared, frames, events, format_name))
        self._track(prepared.run_id, task)
        return events

    async def _send(
        self,
        prepared: PreparedRun,
        frames: AsyncGenerator[str],
        events: RunEvents,
        format_name: str,
    ) -> None:
        sent_end = False
        try:
            async with aclosing(frames) as each:
                async for frame in each:
                    events.add(frame)
            sent_end = True
        except asyncio.CancelledError:  # recorded by the relay; its end is read back below
            pass
        except Exception:
            logger.exception("streamed run %s could not be finished", prepared.run_id)
        finally:
            await self._end(events, prepared, sent_end, format_name)

    def cut_short(self, latency_ms: int) -> LLMFailure:
        """What a stream of this process cut short is recorded as: the client went away,
        or (stopping) the server shut down."""
        if self._stopping:
            return server_shutdown(latency_ms)
        return client_disconnected(latency_ms)

    async def _end(
        self, events: RunEvents, prepared: PreparedRun, sent_end: bool, format_name: str = "native"
    ) -> None:
        """Close the run's events; one that has not sent its end sends it, as stored."""
        if not sent_end:
            end = self.events.formats[format_name].end
            project = prepared.loaded.session.project_id
            with anyio.CancelScope(shield=True), suppress(Exception):
                frame = await end(self._database, project, prepared.run_id, len(events.frames))
                if frame is not None:
                    events.add(frame)
        events.end()

    async def relay(self, events: RunEvents, on_disconnect: str) -> AsyncIterator[str]:
        """A streamed run's frames for the request that started it, then ``[DONE]``. A
        client that goes away first cancels the run unless ``on_disconnect`` is
        ``continue``."""
        try:
            async for chunk in self.events.follow_live(events):
                yield chunk
        finally:
            if not events.ended and on_disconnect == "cancel":
                self.cancel(events.run_id)
        yield SSE_TERMINATOR

    def running(self) -> list[uuid.UUID]:
        """The runs this process is running in the background now."""
        return list(self._tasks)

    def cancel(self, run_id: uuid.UUID) -> None:
        task = self._tasks.get(run_id)
        if task is not None:
            task.cancel()

    async def _sweep_forever(self) -> None:
        """Free the sessions of runs whose server died, and delete events past their
        retention. The sweep wakes when the soonest lease held now would lapse unless
        renewed (and at least every half lease, 30 s at most), so the run of a process that
        died is marked ``interrupted`` as its lease lapses: within one lease of the death,
        since the lease was renewed before it."""
        longest = min(self._settings.run_lease_seconds / 2, 30.0)
        shortest = longest / 10  # a lapse the sweep could not clear is not spun on
        pruned_at = 0.0
        wait = longest
        while True:
            with suppress(Exception):  # the database is unreachable: wait the longest
                soonest = await next_lapse(self._database)
                if soonest is not None:
                    due = (soonest - utcnow()).total_seconds() + SWEEP_SLACK
                    wait = min(longest, max(shortest, due))
            await asyncio.sleep(wait)
            wait = longest
            try:
                recovered = await recover_lapsed_runs(self._database)
                if recovered:
                    logger.warning("marked %d run(s) interrupted: their server stopped", recovered)
                if time.monotonic() - pruned_at > PRUNE_EVERY:
                    pruned_at = time.monotonic()
                    await self._prune()
            except Exception:  # the database is unreachable: next time
                logger.warning("could not sweep lapsed runs", exc_info=True)

    async def _prune(self) -> None:
        now = utcnow()
        keep = timedelta(seconds=self._settings.run_events_retention_seconds)
        async with self._database.transaction() as db:
            await RunEventRepository(db).prune(now - keep, now - keep - ABANDONED_AFTER)

    async def drain(self) -> None:
        """Cancel every run of this process and wait: each is recorded ``interrupted``
        and its readers get that end. Runs started from now on are cut short alike."""
        self._stopping = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with suppress(asyncio.CancelledError):
                await task

    async def stop(self) -> None:
        """Cancel every run of this process (each is recorded ``interrupted``), wait, and
        write their events."""
        if self._sweeper is not None:  # ended before the database is closed under it
            self._sweeper.cancel()
            with suppress(asyncio.CancelledError):
                await self._sweeper
        await self.drain()
        await self.events.stop()


async def _leave_queue_interrupted(database: Database, run_id: uuid.UUID) -> None:
    values = outcome_values(interrupted("", 0, "The server stopped while the run was queued."))
    del values["model"]
    async with database.transaction() as db:
        if await RunRepository(db).leave_queue(run_id, values):
            await queue_run_webhooks(db, run_id)


async def _native_end(database: Database, project_id: uuid.UUID, run_id: uuid.UUID, _: int) -> str:
    """A native stream's last event, from the run as stored."""
    async with database.transaction(write=False) as db:
        response = run_state(await _require(db, project_id, run_id)).response
    if response is None:  # still running (its server died): how it stands
        response = LLMResponse(
            error=True,
            error_type="interrupted",
            error_log="The run's server stopped before it finished.",
        )
    return sse_frame(last_event(response))


NATIVE_EVENTS = EventFormat("native", SSE_TERMINATOR, _native_end)
PRUNE_EVERY = 60.0  # seconds between deletions of old events
SWEEP_SLACK = 0.05  # seconds past a lease's end before the sweep looks
# Events of a run whose end was never written are deleted this long after retention.
ABANDONED_AFTER = timedelta(days=1)


def _stored_outcome(run: ChatRun, reply: SessionMessage | None) -> LLMOutcome:
    """A finished run's outcome as its record and reply hold it."""
    attempts = tuple(Attempt(**a) for a in run.attempts or [])
    if run.status == "succeeded":
        return LLMResult(
            model=run.model,
            content=reply.content if reply else None,
            function_call=reply.function_call if reply else None,
            tool_calls=reply.tool_calls if reply else None,
            finish_reason=reply.finish_reason if reply else None,
            prompt_tokens=run.prompt_tokens,
            completion_tokens=run.completion_tokens,
            cost=run.cost,
            latency_ms=run.latency_ms,
            api_response={},
            attempts=attempts,
        )
    return LLMFailure(
        model=run.model,
        error_type=run.error_type or run.status,
        error_log=run.error_log or "",
        latency_ms=run.latency_ms,
    )


def _cancelled_failure(run: ChatRun) -> LLMFailure:
    latency = int((time.time() - run.created_at.timestamp()) * 1000)
    return LLMFailure(
        model=run.model,
        error_type="cancelled",
        error_log="The run was cancelled (POST /v1/runs/{uuid}/cancel) before it "
        "finished; nothing was stored for its reply.",
        latency_ms=max(latency, 0),
    )


def run_state(stored: StoredRun) -> RunState:
    """The run's record and, once it has finished, its LLMResponse."""
    run, loaded, reply = stored.run, stored.session, stored.reply
    record = run_out(run, loaded.session.uuid, stored.version.number, reply.uuid if reply else None)
    response = None
    if run.status not in ("queued", "running"):
        if run.result is not None:
            response = LLMResponse.model_validate(run.result)
        else:
            detail = response_detail(
                loaded.chat_model,
                stored.version,
                run.model,
                session_uuid=loaded.session.uuid,
                message_uuid=reply.uuid if reply else None,
                run_uuid=run.id,
            )
            response = outcome_response(_stored_outcome(run, reply), detail)
    return RunState(**record.model_dump(), response=response)


async def _require(db: AsyncSession, project_id: uuid.UUID, run_uuid: uuid.UUID) -> StoredRun:
    stored = await RunRepository(db).session_run(project_id, run_uuid)
    if stored is None:
        raise RunNotFound(f"No run {run_uuid} on a session of this project.", field="run_uuid")
    return stored


async def run_stream_format(
    db: AsyncSession, project_id: uuid.UUID, run_uuid: uuid.UUID
) -> str | None:
    """How the project's run frames its events (null: it keeps none); not found raises."""
    return (await _require(db, project_id, run_uuid)).run.stream_format


async def get_run(db: AsyncSession, project_id: uuid.UUID, run_uuid: uuid.UUID) -> RunState:
    stored = await _require(db, project_id, run_uuid)
    state = run_state(stored)
    if stored.run.status == "queued":
        position = await RunRepository(db).queue_position(stored.run, utcnow())
        state = state.model_copy(update={"queue_position": position})
    return state


async def cancel_run(
    database: Database, runs: BackgroundRuns, project_id: uuid.UUID, run_uuid: uuid.UUID
) -> RunState:
    """Cancel a running run (see the module's doc); a finished one is answered as it is."""
    async with database.transaction() as db:
        stored = await _require(db, project_id, run_uuid)
        session = stored.session.session
        cancelled = None
        if stored.run.status == "queued":  # it never runs
            values = outcome_values(_cancelled_failure(stored.run)) | {"status": "cancelled"}
            if await RunRepository(db).leave_queue(stored.run.id, values):
                await queue_run_webhooks(db, stored.run.id)
        elif stored.run.status == "running":
            await SessionRepository(db).lock(session.id)
            cancelled = _cancelled_failure(stored.run)
            values = outcome_values(cancelled) | {"status": "cancelled"}
            if await RunRepository(db).finish(stored.run.id, values):
                await SessionRepository(db).release_lease(session.id, stored.run.id)
                await queue_run_webhooks(db, stored.run.id)
            else:
                cancelled = None  # it finished meanwhile
        stored = await _require(db, project_id, run_uuid)
    runs.cancel(run_uuid)  # a queued run's waiting task too
    if cancelled is not None:
        released(session)
        record_run(stored.session.chat_model.name, stored.version.number, cancelled)
    return run_state(stored)
