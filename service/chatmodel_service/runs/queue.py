"""A second message while a run holds the session: ``if_busy: enqueue``.

An enqueued request gets a ``queued`` run record at once (its uuid, its place in line:
``GET /v1/runs/{uuid}`` shows ``queue_position``, 1 for the next). Its process then waits
for the session as ``if_busy: wait`` does, but the session goes to the session's oldest
queued run first: any other new run is refused (409 ``session_busy``) while runs are
queued, except one that interrupts. When its turn comes, the queued record becomes the
running one (same uuid), the request's messages are stored and the run goes on as any
run does. Nothing is stored for it before that.

Nothing stays ``queued`` for ever: the waiting process vouches for its queued run every
third of a lease (``queued_until``); a queued run it no longer vouches for (its process
died) loses its place at once and is marked ``interrupted`` by the next sweep
(``lease.recover_lapsed_runs``). A foreground request waits at most ``wait_seconds``, then
its run is marked failed (``queue_timeout``) and it gets 409 ``session_busy``; a
background one waits for as long as it takes. ``POST /v1/runs/{uuid}/cancel`` on a queued
run marks it ``cancelled``: it never runs.
"""

from __future__ import annotations

import time
import uuid

from chatmodel_service.config import Settings
from chatmodel_service.db import Database
from chatmodel_service.llm.types import LLMFailure
from chatmodel_service.runs.lease import lease_until, require_session_locked
from chatmodel_service.runs.outcomes import outcome_values
from chatmodel_service.runs.repository import RunRepository
from chatmodel_service.runs.schemas import RunRequest
from chatmodel_service.sessions.repository import SessionRepository
from chatmodel_service.webhooks.outbox import queue_run_webhooks


async def join_queue(
    database: Database,
    settings: Settings,
    project_id: uuid.UUID,
    session_uuid: uuid.UUID,
    body: RunRequest,
    key_name: str | None,
) -> uuid.UUID:
    """Insert the request's ``queued`` run record; its uuid."""
    run_id = uuid.uuid4()
    async with database.transaction() as db:
        loaded = await require_session_locked(SessionRepository(db), project_id, session_uuid)
        await RunRepository(db).start(
            {
                "id": run_id,
                "session_id": loaded.session.id,
                "version_id": loaded.version.id,
                "status": "queued",
                "stream": body.stream,
                "model": loaded.version.model,
                "latency_ms": 0,
                "key_name": key_name,
                "queued_until": lease_until(settings.run_lease_seconds),
            }
        )
    return run_id


class Place:
    """A queued run's place in line, vouched for every third of a lease."""

    def __init__(self, database: Database, settings: Settings, run_id: uuid.UUID) -> None:
        self.database = database
        self.lease_seconds = settings.run_lease_seconds
        self.run_id = run_id
        self.created = time.monotonic()
        self._vouched = time.monotonic()

    async def keep(self) -> bool:
        """Vouch for the run when it is time; False if it left the queue (cancelled)."""
        if time.monotonic() - self._vouched < self.lease_seconds / 3:
            return True
        self._vouched = time.monotonic()
        async with self.database.transaction() as db:
            return await RunRepository(db).vouch(self.run_id, lease_until(self.lease_seconds))

    async def give_up(self) -> None:
        """The request waited its ``wait_seconds``: the run fails (``queue_timeout``)."""
        waited = int((time.monotonic() - self.created) * 1000)
        failure = LLMFailure(
            model="",
            error_type="queue_timeout",
            error_log="The run waited its wait_seconds in the session's queue without its "
            "turn coming; it did not run.",
            latency_ms=waited,
        )
        values = outcome_values(failure)
        del values["model"]
        async with self.database.transaction() as db:
            if await RunRepository(db).leave_queue(self.run_id, values):
                await queue_run_webhooks(db, self.run_id)
