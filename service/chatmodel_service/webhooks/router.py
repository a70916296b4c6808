"""Admin routes for webhook endpoints and their delivery log."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from chatmodel_service.deps import AdminOnly, DbSession, ProjectId, SettingsDep
from chatmodel_service.webhooks import service
from chatmodel_service.webhooks.addresses import AddressPolicy
from chatmodel_service.webhooks.schemas import (
    DeliveryOut,
    DeliveryPage,
    WebhookCreate,
    WebhookCreated,
    WebhookList,
    WebhookOut,
)

# Endpoints see every run of the project: admin work.
router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], dependencies=[AdminOnly])


@router.post("", status_code=201)
async def create_webhook(
    body: WebhookCreate, db: DbSession, project: ProjectId, settings: SettingsDep
) -> WebhookCreated:
    """A new endpoint. The answer holds its signing secret, this once only."""
    policy = AddressPolicy.from_settings(settings.webhook_allowed_hosts)
    return await service.create_webhook(db, project, body, policy)


@router.get("")
async def list_webhooks(db: DbSession, project: ProjectId) -> WebhookList:
    return await service.list_webhooks(db, project)


@router.get("/{webhook_id}")
async def get_webhook(webhook_id: uuid.UUID, db: DbSession, project: ProjectId) -> WebhookOut:
    return await service.get_webhook(db, project, webhook_id)


@router.delete("/{webhook_id}", status_code=204)
async def delete_webhook(webhook_id: uuid.UUID, db: DbSession, project: ProjectId) -> None:
    """Delete the endpoint and its delivery log; nothing more is sent to it."""
    await service.delete_webhook(db, project, webhook_id)


@router.get("/{webhook_id}/deliveries")
async def list_deliveries(
    webhook_id: uuid.UUID,
    db: DbSession,
    project: ProjectId,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[
        uuid.UUID | None, Query(description="next_before of the previous page.")
    ] = None,
) -> DeliveryPage:
    """The endpoint's deliveries, newest first."""
    return await service.list_deliveries(db, project, webhook_id, limit, before)


@router.post("/{webhook_id}/deliveries/{delivery_id}/redeliver", status_code=202)
async def redeliver(
    webhook_id: uuid.UUID, delivery_id: uuid.UUID, db: DbSession, project: ProjectId
) -> DeliveryOut:
    """Send the delivery's event again (the same webhook-id), a fresh count of attempts."""
    return await service.redeliver(db, project, webhook_id, delivery_id)
