"""A run's lease on its session: claiming it, keeping it alive while the model answers,
waking the runs waiting for it, and recovering the leases of runs that died.

The lease is a row value (``chat_session.lease_run_id`` / ``lease_expires_at``), so it
holds across server processes sharing one database. A run claims it, in the write
transaction that locked the session, together with inserting its ``running`` record. A
live run renews it every third of ``run_lease_seconds``; if its process dies, renewals
stop and the lease lapses, after which the session can be taken by the next run (which
marks the dead run interrupted), or is freed at the next server start.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import datetime, timedelta
from typing import Any

import anyio
from sqlalchemy.ext.asyncio import AsyncSession

from chatmodel_service.config import Settings
from chatmodel_service.db import Database
from chatmodel_service.errors import SessionBusy
from chatmodel_service.llm.types import LLMFailure
from chatmodel_service.models import ChatSession
from chatmodel_service.models.base import utcnow
from chatmodel_service.runs.outcomes import interrupted, outcome_values
from chatmodel_service.runs.repository import RunRepository
from chatmodel_service.sessions.repository import LoadedSession, SessionRepository
from chatmodel_service.sessions.service import require_session
from chatmodel_service.webhooks.outbox import queue_run_webhooks

logger = logging.getLogger(__name__)


def lease_until(lease_seconds: float, now: datetime | None = None) -> datetime:
    return (now or utcnow()) + timedelta(seconds=lease_seconds)


# -- claiming ---------------------------------------------------------------------------


async def require_session_locked(
    repo: SessionRepository, project_id: uuid.UUID, session_uuid: uuid.UUID
) -> LoadedSession:
    """The session, its row locked for this write transaction (PostgreSQL)."""
    loaded = await repo.get_with_version(project_id, session_uuid, lock=True)
    if loaded is None:
        return await require_session(repo, project_id, session_uuid)  # raises not found
    return loaded


def live_lease_left(session: ChatSession, now: datetime) -> float | None:
    """Seconds left on the session's lease, or None when no run holds it or it lapsed."""
    expires = session.lease_expires_at
    if session.lease_run_id is None or expires is None or expires < now:
        return None
    return (expires - now).total_seconds()


def retry_after(left: float) -> int:
    """The Retry-After (seconds) of a 409 answered while a lease has ``left`` seconds."""
    return min(max(1, int(left) + 1), 5)


async def give_up(db: AsyncSession, run_id: uuid.UUID) -> None:
    """Mark a run whose lease lapsed as failed (``interrupted``), if it is still running."""
    values = outcome_values(interrupted(""))
    del values["model"]  # keep the model the run was started with
    if await RunRepository(db).finish(run_id, values):
        await queue_run_webhooks(db, run_id)  # told as run.failed (interrupted)


async def claim_session(
    db: AsyncSession,
    settings: Settings,
    loaded: LoadedSession,
    *,
    stream: bool,
    key_name: str | None,
    idempotency: tuple[str, str] | None = None,
    responses_request: dict[str, Any] | None = None,
    stream_format: str | None = None,
    queued: uuid.UUID | None = None,
    jump_queue: bool = False,
    interrupted: uuid.UUID | None = None,
) -> uuid.UUID:
    """Take the session's lease for a new run and insert its ``running`` record, in the
    caller's write transaction (which must have locked the session). Raises SessionBusy
    when a live run holds it, or when runs are queued for it (``queue.py``) and this is
    not the first of them (``queued``: its queued record, which becomes the running one)
    nor an interrupting run (``jump_queue``; ``interrupted``: the holder it cancelled in
    this transaction, see ``interrupt_holder``); a lapsed holder is marked interrupted
    first.
    ``responses_request``: a Responses API run's request, kept on its record.
    ``stream_format``: the run keeps its events for resuming, framed so (``events.py``)."""
    session = loaded.session
    sessions = SessionRepository(db)
    runs = RunRepository(db)
    now = utcnow()
    holder = session.lease_run_id
    left = live_lease_left(session, now)
    if holder is not None and holder == interrupted:  # released a moment ago
        holder = left = None
    if left is not None:
        raise SessionBusy(
            "Another run is in progress on this session; retry when it has finished, or "
            "send if_busy=wait (or enqueue) to queue behind it.",
            retry_after=retry_after(left),
        )
    if not jump_queue:
        first = await runs.first_queued(session.id, now)
        if first is not None and first != queued:
            raise SessionBusy(
                "Runs are queued for this session (if_busy=enqueue) and go first; retry, "
                "or send if_busy=enqueue to queue behind them.",
                retry_after=1,
            )
    if holder is not None:
        await give_up(db, holder)
    run_id = queued or uuid.uuid4()
    until = lease_until(settings.run_lease_seconds, now)
    if not await sessions.take_lease(session.id, run_id, now, until):
        raise SessionBusy("Another run took this session a moment ago; retry.")
    key, digest = idempotency or (None, None)
    values = {
        "status": "running",
        "stream": stream,
        "model": loaded.version.model,
        "key_name": key_name,
        "idempotency_key": key,
        "request_hash": digest,
        "responses_request": responses_request,
        "stream_format": stream_format,
    }
    if queued is not None:
        if not await runs.leave_queue(queued, values):
            raise RunLeftQueue(queued)
        return queued
    values |= {
        "id": run_id,
        "session_id": session.id,
        "version_id": loaded.version.id,
        "latency_ms": 0,
    }
    await runs.start(values)
    return run_id


class RunLeftQueue(Exception):
    """A queued run that was cancelled (or given up) before its turn came."""

    def __init__(self, run_id: uuid.UUID) -> None:
        super().__init__(f"run {run_id} is no longer queued")
        self.run_id = run_id


async def interrupt_holder(db: AsyncSession, loaded: LoadedSession) -> uuid.UUID | None:
    """if_busy=interrupt: cancel the run holding the session (as POST .../cancel does:
    ``cancelled``, nothing stored for its reply) and free the session, in the caller's
    write transaction; the run cancelled, if any."""
    session = loaded.session
    holder = session.lease_run_id
    if holder is None or live_lease_left(session, utcnow()) is None:
        return None
    stopped = LLMFailure(
        model="",
        error_type="cancelled",
        error_log="The run was interrupted by a newer run on its session (if_busy=interrupt); "
        "nothing was stored for its reply.",
        latency_ms=0,
    )
    values = outcome_values(stopped) | {"status": "cancelled"}
    del values["model"], values["latency_ms"]
    if not await RunRepository(db).finish(holder, values):
        return None
    await SessionRepository(db).release_lease(session.id, holder)
    await queue_run_webhooks(db, holder)
    return holder


# -- waiting for a release --------------------------------------------------------------


# Runs of this process waiting for a session (if_busy=wait), by the session's project and
# uuid (what a run request names). A release in this process wakes them at once; a
# release by another process is found by their next poll.
_waiting: dict[tuple[uuid.UUID, uuid.UUID], set[asyncio.Event]] = {}


async def wait_for_release(project_id: uuid.UUID, session_uuid: uuid.UUID, at_most: float) -> None:
    """Sleep until this process releases the session or ``at_most`` seconds pass."""
    key = (project_id, session_uuid)
    released = asyncio.Event()
    _waiting.setdefault(key, set()).add(released)
    try:
        with anyio.move_on_after(at_most):
            await released.wait()
    finally:
        waiters = _waiting.get(key)
        if waiters is not None:
            waiters.discard(released)
            if not waiters:
                del _waiting[key]


def released(session: ChatSession) -> None:
    """Wake this process's runs waiting for the session (call after the commit)."""
    for event in _waiting.get((session.project_id, session.uuid), ()):
        event.set()


# -- keeping it --------------------------------------------------------------------------


async def _renew_forever(
    database: Database,
    lease_seconds: float,
    session_id: uuid.UUID,
    run_id: uuid.UUID,
    owner: asyncio.Task[Any] | None,
) -> None:
    while True:
        await asyncio.sleep(lease_seconds / 3)
        try:
            async with database.transaction() as db:
                kept = await SessionRepository(db).renew_lease(
                    session_id, run_id, lease_until(lease_seconds)
                )
        except Exception:  # the database is unreachable: try again next time
            logger.warning("could not renew the lease of run %s", run_id, exc_info=True)
            continue
        if not kept:
            logger.warning("run %s lost its lease on session %s", run_id, session_id)
            if owner is not None:  # cancelled elsewhere: stop the model call
                owner.cancel()
            return


@asynccontextmanager
async def keep_lease(
    database: Database,
    lease_seconds: float,
    session_id: uuid.UUID,
    run_id: uuid.UUID,
    *,
    cancel_on_loss: bool = False,
) -> AsyncIterator[None]:
    """Renew the run's lease (``lease_seconds`` long, the length it was taken with) in the
    background for as long as the block runs; ``cancel_on_loss``: once the lease is lost
    (the run was cancelled, or given up), cancel the task running the block."""
    owner = asyncio.current_task() if cancel_on_loss else None
    renewer = asyncio.create_task(
        _renew_forever(database, lease_seconds, session_id, run_id, owner)
    )
    try:
        yield
    finally:
        renewer.cancel()
        with anyio.CancelScope(shield=True), suppress(asyncio.CancelledError):
            await renewer


# -- recovering -------------------------------------------------------------------------


async def recover_lapsed_runs(database: Database) -> int:
    """Mark every run whose lease lapsed (and every queued run its process no longer
    vouches for) as interrupted and free its session: at start-up and in every server's
    sweep; taking a session over does the same for one session. Looks first in a read
    transaction, so a sweep that finds nothing takes no write lock."""
    now = utcnow()
    async with database.transaction(write=False) as db:
        if not (
            await SessionRepository(db).lapsed_leases(now)
            or await RunRepository(db).lapsed_queued(now)
        ):
            return 0
    async with database.transaction() as db:
        sessions = SessionRepository(db)
        lapsed = await sessions.lapsed_leases(now)
        for session_id, run_id in lapsed:
            await give_up(db, run_id)
            await sessions.release_lease(session_id, run_id)
        runs = RunRepository(db)
        abandoned = await runs.lapsed_queued(now)
        for run_id in abandoned:  # queued by a process that died
            values = outcome_values(interrupted("", 0, "Its server stopped while it was queued."))
            del values["model"]
            if await runs.leave_queue(run_id, values):
                await queue_run_webhooks(db, run_id)
    return len(lapsed) + len(abandoned)


async def next_lapse(database: Database) -> datetime | None:
    """The soonest a held lease or a queued run could lapse, if nobody renews it."""
    async with database.transaction(write=False) as db:
        times = [
            await SessionRepository(db).next_lease_expiry(),
            await RunRepository(db).next_queue_expiry(),
        ]
    known = [at for at in times if at is not None]
    return min(known) if known else None
