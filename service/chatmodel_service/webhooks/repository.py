"""All SQL for webhook endpoints, their deliveries (the outbox) and the runs they tell of.

Runs are read from their tables here, not through the run engine, which imports the
outbox (``outbox.py``) to write deliveries in its finishing transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, bindparam, delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from chatmodel_service.db import execute_core
from chatmodel_service.models import (
    ChatModel,
    ChatModelVersion,
    ChatRun,
    ChatSession,
    SessionMessage,
    WebhookDelivery,
    WebhookEndpoint,
)

_ENDPOINT_TABLE = cast(Table, WebhookEndpoint.__table__)
_RUN_TABLE = cast(Table, ChatRun.__table__)
_SESSION_TABLE = cast(Table, ChatSession.__table__)
_ENDPOINTS, _RUNS, _SESSIONS = _ENDPOINT_TABLE.c, _RUN_TABLE.c, _SESSION_TABLE.c
# Built once (see db.execute_core): the endpoints of a run's project, the one query a run
# of a project without endpoints pays for (primary keys, then the project's index).
_ENDPOINTS_OF_RUN = (
    select(_ENDPOINTS.id, _ENDPOINTS.event_types)
    .select_from(_RUN_TABLE)
    .join(_SESSION_TABLE, _SESSIONS.id == _RUNS.session_id)
    .join(_ENDPOINT_TABLE, _ENDPOINTS.project_id == _SESSIONS.project_id)
    .where(_RUNS.id == bindparam("run_id"))
)
_ADD_DELIVERIES = insert(cast(Table, WebhookDelivery.__table__))


@dataclass(frozen=True)
class FinishedRun:
    """What a run's webhook tells of it."""

    run: ChatRun
    session_uuid: uuid.UUID
    chat_model: str
    version: int
    finish_reason: str | None  # the stored reply's, on success


@dataclass(frozen=True)
class ClaimedDelivery:
    """A due delivery this worker holds (``token``) until it has recorded the attempt."""

    id: uuid.UUID
    token: uuid.UUID
    url: str
    secret: str
    payload: dict[str, Any]
    attempts: int  # made before this one


def _claimable(now: datetime) -> ColumnElement[bool]:
    """Due, and held by no worker (or by one whose claim lapsed)."""
    return (
        (WebhookDelivery.status == "pending")
        & (WebhookDelivery.next_attempt_at <= now)
        & or_(WebhookDelivery.claimed_until.is_(None), WebhookDelivery.claimed_until < now)
    )


class OutboxRepository:
    """What the run's finishing transaction reads and writes."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def endpoints_of_run(self, run_id: uuid.UUID) -> list[tuple[uuid.UUID, list[str]]]:
        """(id, event types) of every endpoint of the run's project (none: sessionless)."""
        rows = await execute_core(self.session, _ENDPOINTS_OF_RUN, {"run_id": run_id})
        return [(row.id, list(row.event_types)) for row in rows]

    async def finished_run(self, run_id: uuid.UUID) -> FinishedRun | None:
        row = (
            await self.session.execute(
                select(ChatRun, ChatSession.uuid, ChatModel.name, ChatModelVersion.number)
                .join(ChatSession, ChatSession.id == ChatRun.session_id)
                .join(ChatModelVersion, ChatModelVersion.id == ChatRun.version_id)
                .join(ChatModel, ChatModel.id == ChatModelVersion.chat_model_id)
                .where(ChatRun.id == run_id)
                .execution_options(populate_existing=True)
            )
        ).one_or_none()
        if row is None:
            return None
        run, session_uuid, chat_model, version = row
        finish_reason = await self.session.scalar(
            select(SessionMessage.finish_reason).where(SessionMessage.run_id == run_id).limit(1)
        )
        return FinishedRun(run, session_uuid, chat_model, int(version), finish_reason)

    async def add_deliveries(self, rows: list[dict[str, Any]]) -> None:
        connection = await self.session.connection()
        await connection.execute(_ADD_DELIVERIES, rows)


class EndpointRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, endpoint: WebhookEndpoint) -> WebhookEndpoint:
        self.session.add(endpoint)
        await self.session.flush()
        return endpoint

    async def get(self, project_id: uuid.UUID, endpoint_id: uuid.UUID) -> WebhookEndpoint | None:
        return await self.session.scalar(
            select(WebhookEndpoint).where(
                WebhookEndpoint.id == endpoint_id, WebhookEndpoint.project_id == project_id
            )
        )

    async def list_for_project(self, project_id: uuid.UUID) -> list[WebhookEndpoint]:
        rows = await self.session.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.project_id == project_id)
            .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
        )
        return list(rows)

    async def delete(self, endpoint_id: uuid.UUID) -> None:
        """The endpoint and its deliveries (sent or not: nothing more goes out)."""
        await self.session.execute(
            delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
        )
        await self.session.execute(delete(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id))


class DeliveryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, endpoint_id: uuid.UUID, delivery_id: uuid.UUID) -> WebhookDelivery | None:
        return await self.session.scalar(
            select(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id, WebhookDelivery.endpoint_id == endpoint_id)
            .execution_options(populate_existing=True)
        )

    async def page(
        self, endpoint_id: uuid.UUID, limit: int, before: WebhookDelivery | None
    ) -> list[WebhookDelivery]:
        """Up to ``limit`` deliveries, newest first, older than ``before`` if given."""
        query = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
        if before is not None:
            query = query.where(
                or_(
                    WebhookDelivery.created_at < before.created_at,
                    (WebhookDelivery.created_at == before.created_at)
                    & (WebhookDelivery.id < before.id),
                )
            )
        rows = await self.session.scalars(
            query.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
            .limit(limit)
            .execution_options(populate_existing=True)
        )
        return list(rows)

    async def redeliver(self, delivery_id: uuid.UUID, now: datetime) -> None:
        """Queue the delivery again, a fresh count of attempts; an attempt in flight is
        no longer its (its claim is dropped, so its result is not recorded)."""
        await self.session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id)
            .values(
                status="pending",
                attempts=0,
                next_attempt_at=now,
                claimed_until=None,
                claim_token=None,
                delivered_at=None,
            )
        )

    async def any_due(self, now: datetime) -> bool:
        found = await self.session.scalar(
            select(WebhookDelivery.id).where(_claimable(now)).limit(1)
        )
        return found is not None

    async def claim_due(
        self, now: datetime, limit: int, until: datetime, token: uuid.UUID
    ) -> list[ClaimedDelivery]:
        """Claim up to ``limit`` due deliveries nobody holds, until ``until``: a claim
        another worker holds is left alone (PostgreSQL: rows it is claiming are skipped),
        so one attempt is never sent twice at once."""
        claimable = _claimable(now)
        due = (
            select(WebhookDelivery.id)
            .where(claimable)
            .order_by(WebhookDelivery.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        await self.session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(due), claimable)
            .values(claimed_until=until, claim_token=token)
            .execution_options(synchronize_session=False)
        )
        rows = await self.session.execute(
            select(
                WebhookDelivery.id,
                WebhookEndpoint.url,
                WebhookEndpoint.secret,
                WebhookDelivery.payload,
                WebhookDelivery.attempts,
            )
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(WebhookDelivery.claim_token == token)
        )
        return [
            ClaimedDelivery(id, token, url, secret, payload, attempts)
            for id, url, secret, payload, attempts in rows
        ]

    async def record(
        self, delivery_id: uuid.UUID, token: uuid.UUID, values: dict[str, Any]
    ) -> bool:
        """Write an attempt's outcome, releasing the claim; False when the claim is no
        longer this worker's (the delivery was redelivered, or its endpoint deleted)."""
        result = await self.session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id, WebhookDelivery.claim_token == token)
            .values(**values, claimed_until=None, claim_token=None)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    async def release(self, tokens: list[uuid.UUID]) -> None:
        """Drop claims whose attempts were not made (a stopping server)."""
        await self.session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.claim_token.in_(tokens))
            .values(claimed_until=None, claim_token=None)
            .execution_options(synchronize_session=False)
        )
