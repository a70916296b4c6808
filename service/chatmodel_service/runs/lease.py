"""Keeping a run's hold on its session alive while the model answers.

The lease is a row value (``chat_session.lease_run_id`` / ``lease_expires_at``), so it
holds across server processes sharing one database. A live run renews it every third of
``run_lease_seconds``; if its process dies, renewals stop and the lease lapses, after
which the session can be taken by the next run (which marks the dead run interrupted).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import datetime, timedelta

import anyio

from chatmodel_service.db import Database
from chatmodel_service.models import ChatSession
from chatmodel_service.models.base import utcnow
from chatmodel_service.sessions.repository import SessionRepository

logger = logging.getLogger(__name__)


def lease_until(lease_seconds: float, now: datetime | None = None) -> datetime:
    return (now or utcnow()) + timedelta(seconds=lease_seconds)


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


async def _renew_forever(
    database: Database, lease_seconds: float, session_id: uuid.UUID, run_id: uuid.UUID
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
            return


@asynccontextmanager
async def keep_lease(
    database: Database, lease_seconds: float, session_id: uuid.UUID, run_id: uuid.UUID
) -> AsyncIterator[None]:
    """Renew the run's lease (``lease_seconds`` long, the length it was taken with) in the
    background for as long as the block runs."""
    renewer = asyncio.create_task(_renew_forever(database, lease_seconds, session_id, run_id))
    try:
        yield
    finally:
        renewer.cancel()
        with anyio.CancelScope(shield=True), suppress(asyncio.CancelledError):
            await renewer
