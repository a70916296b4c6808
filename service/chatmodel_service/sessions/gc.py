"""Retention (``chatmodel gc``): per chat model with ``retention_days``, delete the sessions
nothing happened in for longer, with their messages and runs.

A session's last activity is its newest message, or its creation if it has none (a fork
counts from its creation, whatever the age of the messages it copied). Sessions a run holds
are skipped. Sessions are found on the (chat_model_id, created_at) index and deleted a batch
at a time, each batch in its own short transaction with set-based deletes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from chatmodel_service.chat_models.repository import ChatModelRepository
from chatmodel_service.db import Database
from chatmodel_service.models.base import utcnow
from chatmodel_service.sessions.lifecycle_repository import Deleted, SessionLifecycleRepository

DEFAULT_BATCH_SIZE = 500


@dataclass(frozen=True)
class RetentionSweep:
    """What one chat model's sweep deleted (in a dry run: would delete)."""

    project: str
    chat_model: str
    retention_days: int
    deleted: Deleted
    busy: int  # idle sessions skipped because a run holds them

    def describe(self, *, dry_run: bool) -> str:
        done = "would delete" if dry_run else "deleted"
        line = (
            f"{self.project}/{self.chat_model} (retention {_count(self.retention_days, 'day')}): "
            f"{done} {_count(self.deleted.sessions, 'session')} "
            f"({_count(self.deleted.messages, 'message')}, {_count(self.deleted.runs, 'run')})"
        )
        if self.busy:
            line += f"; skipped {_count(self.busy, 'session')} a run holds"
        return line


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


async def collect_garbage(
    database: Database, *, dry_run: bool = False, batch_size: int = DEFAULT_BATCH_SIZE
) -> list[RetentionSweep]:
    """Sweep every chat model that has ``retention_days`` (of every project); one
    ``RetentionSweep`` per chat model, by project and name. ``dry_run`` only counts."""
    started = utcnow()
    async with database.transaction(write=False) as db:
        chat_models = await ChatModelRepository(db).with_retention()
    sweeps = []
    for chat_model, project in chat_models:
        days = chat_model.retention_days
        assert days is not None
        cutoff = started - timedelta(days=days)
        deleted, busy = await _sweep(database, chat_model.id, cutoff, dry_run, batch_size)
        sweeps.append(RetentionSweep(project, chat_model.name, days, deleted, busy))
    return sweeps


async def _sweep(
    database: Database,
    chat_model_id: uuid.UUID,
    cutoff: datetime,
    dry_run: bool,
    batch_size: int,
) -> tuple[Deleted, int]:
    """Walk the chat model's sessions idle since ``cutoff`` in (created_at, id) order, a
    batch per transaction, until a batch comes back empty. Deleting locks the batch
    (PostgreSQL; SQLite serializes writers), then checks again that each session is still
    idle and free, so a message or a run that arrived meanwhile keeps its session."""
    total, busy = Deleted(), 0
    after: tuple[datetime, uuid.UUID] | None = None
    while True:
        async with database.transaction(write=not dry_run) as db:
            lifecycle = SessionLifecycleRepository(db)
            now = utcnow()
            batch = await lifecycle.idle_sessions(
                chat_model_id, cutoff, now, after, batch_size, lock=not dry_run
            )
            if not batch:
                return total, busy
            after = (batch[-1].created_at, batch[-1].id)
            busy += sum(1 for idle in batch if idle.busy)
            free = [idle.id for idle in batch if not idle.busy]
            if dry_run:
                total += await lifecycle.contents(free)
            else:
                total += await lifecycle.delete_sessions(
                    await lifecycle.still_idle(free, cutoff, now)
                )
