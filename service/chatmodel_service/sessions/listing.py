"""The admin listing of sessions (``GET /v1/sessions``): which sessions a page holds
(``SessionFilter``) and what each row shows. Never commits."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from chatmodel_service.chat_models.repository import ChatModelRepository
from chatmodel_service.chat_models.service import require_chat_model, resolve_version
from chatmodel_service.errors import InvalidInput
from chatmodel_service.sessions.cursor import decode_cursor, encode_cursor
from chatmodel_service.sessions.listing_repository import (
    RunCounts,
    SessionCriteria,
    SessionListingRepository,
)
from chatmodel_service.sessions.schemas import SessionPage, SessionSummary
from chatmodel_service.sessions.service import session_out

# How much of the first user message a row shows.
FIRST_MESSAGE_LENGTH = 200


def _utc(moment: datetime | None, field: str) -> datetime | None:
    """A bound in UTC, a naive one taken to be UTC already (as stored times are)."""
    if moment is None or moment.tzinfo is None:
        return None if moment is None else moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # within an offset of year 1 or 9999
        raise InvalidInput(
            f"{field} {moment.isoformat()} is not a time UTC can hold.", field=field
        ) from None


@dataclass(frozen=True)
class SessionFilter:
    """Which sessions the listing shows: those matching every field that is set."""

    chat_model: str | None = None
    version: int | None = None  # a version number of ``chat_model``
    user_id: str | None = None  # metadata.user_id (see sessions.metadata)
    created_after: datetime | None = None  # created_at >= created_after
    created_before: datetime | None = None  # created_at < created_before
    has_errors: bool | None = None  # with a failed run (cancelled ones do not count)
    text: str | None = None  # in some message's content, case-insensitively

    def __post_init__(self) -> None:
        if self.version is not None and self.chat_model is None:
            raise InvalidInput(
                "version filters one chat model's sessions by its version number: give "
                "chat_model too.",
                field="version",
            )
        after = _utc(self.created_after, "created_after")
        before = _utc(self.created_before, "created_before")
        object.__setattr__(self, "created_after", after)
        object.__setattr__(self, "created_before", before)
        if after is not None and before is not None and before <= after:
            raise InvalidInput(
                f"created_before ({before.isoformat()}) must be later than created_after "
                f"({after.isoformat()}): the page holds the sessions created from "
                "created_after up to, not including, created_before.",
                field="created_before",
            )


async def _criteria(
    db: AsyncSession, project_id: uuid.UUID, filters: SessionFilter
) -> SessionCriteria:
    """The filter with its chat model and version resolved (404 for either unknown)."""
    chat_model_id = version_id = None
    if filters.chat_model is not None:
        chat_models = ChatModelRepository(db)
        chat_model = await require_chat_model(chat_models, project_id, filters.chat_model)
        chat_model_id = chat_model.id
        if filters.version is not None:
            version_id = (await resolve_version(chat_models, chat_model, filters.version)).id
    return SessionCriteria(
        project_id=project_id,
        chat_model_id=chat_model_id,
        version_id=version_id,
        user_id=filters.user_id,
        created_after=filters.created_after,
        created_before=filters.created_before,
        has_errors=filters.has_errors,
        text=filters.text,
    )


async def list_sessions(
    db: AsyncSession,
    project_id: uuid.UUID,
    filters: SessionFilter,
    limit: int,
    cursor: str | None,
) -> SessionPage:
    """The project's sessions matching ``filters``, newest first, a page at a time; each
    with its figures (messages, runs, failures, first user message), read for the whole
    page at once."""
    criteria = await _criteria(db, project_id, filters)
    repo = SessionListingRepository(db)
    before = decode_cursor(cursor) if cursor is not None else None
    rows = await repo.page(criteria, before, limit + 1)
    page = rows[:limit]
    ids = [loaded.session.id for loaded in page]
    messages = await repo.message_summaries(ids)
    runs = await repo.run_counts(ids)
    first_messages = await repo.first_user_messages(ids, FIRST_MESSAGE_LENGTH)
    data = []
    for loaded in page:
        session_id = loaded.session.id
        count, last_at = messages.get(session_id, (0, None))
        run_counts = runs.get(session_id, RunCounts(0, 0))
        data.append(
            SessionSummary(
                **session_out(loaded).model_dump(),
                message_count=count,
                last_message_at=last_at,
                user_id=loaded.session.user_id,
                first_user_message=first_messages.get(session_id),
                run_count=run_counts.runs,
                failed_runs=run_counts.failed,
            )
        )
    last = page[-1].session if len(rows) > limit else None
    return SessionPage(
        data=data, next_cursor=encode_cursor(last.created_at, last.id) if last else None
    )
