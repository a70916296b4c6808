"""Background runs, reading a run by its uuid, and cancelling one.

A background run (``"background": true``) starts as any run does, in the request: the
session claimed under its lease (one run at a time), the request's messages stored, the
prompt fitted. The request is then answered (202, the run ``running``) and the model call
goes on in a task of this process, under the same lease and heartbeat, and is stored by
the same finish phase as a foreground run, its result kept on the run record for
``GET /v1/runs/{uuid}``.

Nothing stays ``running`` for ever: a server that stops cancels its background runs
(recorded ``interrupted``); one that dies leaves a lease that lapses, and the run is marked
``interrupted`` by whoever takes the session next or by the next server start, as for any
run.

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
from contextlib import suppress

from sqlalchemy.ext.asyncio import AsyncSession

from chatmodel_service.db import Database
from chatmodel_service.errors import NotFound
from chatmodel_service.llm.gateway import LLMGateway
from chatmodel_service.llm.types import Attempt, LLMFailure, LLMOutcome, LLMResult
from chatmodel_service.models import ChatRun, SessionMessage
from chatmodel_service.observability.metrics import record_run
from chatmodel_service.runs.lease import released
from chatmodel_service.runs.outcomes import outcome_response, outcome_values, response_detail
from chatmodel_service.runs.records import run_out
from chatmodel_service.runs.repository import RunRepository, StoredRun
from chatmodel_service.runs.schemas import LLMResponse, RunState
from chatmodel_service.runs.service import PreparedRun, complete_run
from chatmodel_service.sessions.repository import SessionRepository

logger = logging.getLogger(__name__)


class RunNotFound(NotFound):
    code = "run_not_found"


class BackgroundRuns:
    """The background runs of this process, by run uuid."""

    def __init__(self) -> None:
        self._tasks: dict[uuid.UUID, asyncio.Task[None]] = {}

    def start(self, database: Database, gateway: LLMGateway, prepared: PreparedRun) -> None:
        task = asyncio.create_task(self._run(database, gateway, prepared))
        self._tasks[prepared.run_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(prepared.run_id, None))

    @staticmethod
    async def _run(database: Database, gateway: LLMGateway, prepared: PreparedRun) -> None:
        try:
            await complete_run(database, gateway, prepared, cancel_on_lost_lease=True)
        except asyncio.CancelledError:  # cancelled, or the server stops: recorded by then
            pass
        except Exception:  # the outcome could not be stored: the lease lapses, as on a crash
            logger.exception("background run %s could not be finished", prepared.run_id)

    def running(self) -> list[uuid.UUID]:
        """The runs this process is running in the background now."""
        return list(self._tasks)

    def cancel(self, run_id: uuid.UUID) -> None:
        task = self._tasks.get(run_id)
        if task is not None:
            task.cancel()

    async def stop(self) -> None:
        """Cancel every background run (each is recorded ``interrupted``) and wait."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with suppress(asyncio.CancelledError):
                await task


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


def run_state(stored: StoredRun) -> RunState:
    """The run's record and, once it has finished, its LLMResponse."""
    run, loaded, reply = stored.run, stored.session, stored.reply
    record = run_out(run, loaded.session.uuid, stored.version.number, reply.uuid if reply else None)
    response = None
    if run.status != "running":
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


async def get_run(db: AsyncSession, project_id: uuid.UUID, run_uuid: uuid.UUID) -> RunState:
    return run_state(await _require(db, project_id, run_uuid))


async def cancel_run(
    database: Database, runs: BackgroundRuns, project_id: uuid.UUID, run_uuid: uuid.UUID
) -> RunState:
    """Cancel a running run (see the module's doc); a finished one is answered as it is."""
    async with database.transaction() as db:
        stored = await _require(db, project_id, run_uuid)
        session = stored.session.session
        cancelled = None
        if stored.run.status == "running":
            await SessionRepository(db).lock(session.id)
            latency = int((time.time() - stored.run.created_at.timestamp()) * 1000)
            cancelled = LLMFailure(
                model=stored.run.model,
                error_type="cancelled",
                error_log="The run was cancelled (POST /v1/runs/{uuid}/cancel) before it "
                "finished; nothing was stored for its reply.",
                latency_ms=max(latency, 0),
            )
            values = outcome_values(cancelled) | {"status": "cancelled"}
            if await RunRepository(db).finish(stored.run.id, values):
                await SessionRepository(db).release_lease(session.id, stored.run.id)
            else:
                cancelled = None  # it finished meanwhile
        stored = await _require(db, project_id, run_uuid)
    if cancelled is not None:
        released(session)
        runs.cancel(run_uuid)
        record_run(stored.session.chat_model.name, stored.version.number, cancelled)
    return run_state(stored)
