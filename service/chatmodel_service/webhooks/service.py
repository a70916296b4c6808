"""Webhook endpoints of a project and their delivery log. Never commits: the request's
unit of work does."""

from __future__ import annotations

import uuid
from typing import cast

from sqlalchemy.ext.asyncio import AsyncSession

from chatmodel_service.errors import InvalidInput, NotFound
from chatmodel_service.models import WebhookDelivery, WebhookEndpoint
from chatmodel_service.models.base import utcnow
from chatmodel_service.webhooks.addresses import AddressPolicy, check_url
from chatmodel_service.webhooks.outbox import wake_after_commit
from chatmodel_service.webhooks.repository import DeliveryRepository, EndpointRepository
from chatmodel_service.webhooks.schemas import (
    EVENT_TYPES,
    DeliveryOut,
    DeliveryPage,
    DeliveryStatus,
    EventType,
    WebhookCreate,
    WebhookCreated,
    WebhookList,
    WebhookOut,
)
from chatmodel_service.webhooks.signing import new_secret


class WebhookNotFound(NotFound):
    code = "webhook_not_found"


class DeliveryNotFound(NotFound):
    code = "delivery_not_found"


def _event_types(values: list[str]) -> list[EventType]:
    """Stored names as the wire's (an unknown one, from a newer server, left out)."""
    return [cast(EventType, value) for value in values if value in EVENT_TYPES]


def webhook_out(endpoint: WebhookEndpoint) -> WebhookOut:
    return WebhookOut(
        id=endpoint.id,
        url=endpoint.url,
        event_types=_event_types(endpoint.event_types),
        description=endpoint.description,
        created_at=endpoint.created_at,
    )


def message_id(delivery_id: uuid.UUID) -> str:
    """The ``webhook-id`` of a delivery: the same on each of its attempts."""
    return f"msg_{delivery_id.hex}"


def delivery_out(delivery: WebhookDelivery) -> DeliveryOut:
    return DeliveryOut(
        id=delivery.id,
        webhook_id=delivery.endpoint_id,
        message_id=message_id(delivery.id),
        event_type=cast(EventType, delivery.event_type),
        run_uuid=delivery.run_id,
        status=cast(DeliveryStatus, delivery.status),
        attempts=delivery.attempts,
        last_status_code=delivery.last_status_code,
        last_error=delivery.last_error,
        next_attempt_at=delivery.next_attempt_at,
        created_at=delivery.created_at,
        delivered_at=delivery.delivered_at,
    )


async def create_webhook(
    db: AsyncSession, project_id: uuid.UUID, body: WebhookCreate, policy: AddressPolicy
) -> WebhookCreated:
    """A new endpoint; the answer holds its signing secret, this once only."""
    url = check_url(body.url, policy)
    secret = new_secret()
    wanted = [name for name in EVENT_TYPES if name in body.event_types]  # deduplicated
    endpoint = await EndpointRepository(db).add(
        WebhookEndpoint(
            project_id=project_id,
            url=url,
            description=body.description,
            event_types=wanted,
            secret=secret,
            created_at=utcnow(),
        )
    )
    return WebhookCreated(**webhook_out(endpoint).model_dump(), secret=secret)


async def require_webhook(
    db: AsyncSession, project_id: uuid.UUID, webhook_id: uuid.UUID
) -> WebhookEndpoint:
    endpoint = await EndpointRepository(db).get(project_id, webhook_id)
    if endpoint is None:
        raise WebhookNotFound(f"No webhook {webhook_id} in this project.", field="webhook_id")
    return endpoint


async def list_webhooks(db: AsyncSession, project_id: uuid.UUID) -> WebhookList:
    endpoints = await EndpointRepository(db).list_for_project(project_id)
    return WebhookList(data=[webhook_out(endpoint) for endpoint in endpoints])


async def get_webhook(db: AsyncSession, project_id: uuid.UUID, webhook_id: uuid.UUID) -> WebhookOut:
    return webhook_out(await require_webhook(db, project_id, webhook_id))


async def delete_webhook(db: AsyncSession, project_id: uuid.UUID, webhook_id: uuid.UUID) -> None:
    """The endpoint and its delivery log; deliveries not yet sent are dropped."""
    endpoint = await require_webhook(db, project_id, webhook_id)
    await EndpointRepository(db).delete(endpoint.id)


async def list_deliveries(
    db: AsyncSession,
    project_id: uuid.UUID,
    webhook_id: uuid.UUID,
    limit: int,
    before: uuid.UUID | None,
) -> DeliveryPage:
    """The endpoint's deliveries, newest first, a page at a time."""
    endpoint = await require_webhook(db, project_id, webhook_id)
    deliveries = DeliveryRepository(db)
    cursor = None
    if before is not None:
        cursor = await deliveries.get(endpoint.id, before)
        if cursor is None:
            raise InvalidInput(
                f"No delivery {before} of this webhook: pass a next_before this log gave.",
                field="before",
            )
    rows = await deliveries.page(endpoint.id, limit + 1, cursor)
    more = len(rows) > limit
    rows = rows[:limit]
    return DeliveryPage(
        data=[delivery_out(row) for row in rows],
        next_before=rows[-1].id if more and rows else None,
    )


async def redeliver(
    db: AsyncSession, project_id: uuid.UUID, webhook_id: uuid.UUID, delivery_id: uuid.UUID
) -> DeliveryOut:
    """Queue a delivery's event again (the same message id), with a fresh count of
    attempts; sent by a worker once the request's transaction commits."""
    endpoint = await require_webhook(db, project_id, webhook_id)
    deliveries = DeliveryRepository(db)
    if await deliveries.get(endpoint.id, delivery_id) is None:
        raise DeliveryNotFound(
            f"No delivery {delivery_id} of webhook {webhook_id}.", field="delivery_id"
        )
    await deliveries.redeliver(delivery_id, utcnow())
    wake_after_commit(db)
    delivery = await deliveries.get(endpoint.id, delivery_id)
    assert delivery is not None
    return delivery_out(delivery)
