"""Wire formats for webhook endpoints and their deliveries."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# A run of a session ends as one of these; a run made through the Responses API is also
# told as a response's end (``response.incomplete``: it stopped at its output limit).
RUN_EVENTS = ("run.completed", "run.failed", "run.cancelled")
RESPONSE_EVENTS = (
    "response.completed",
    "response.failed",
    "response.cancelled",
    "response.incomplete",
)
EVENT_TYPES = RUN_EVENTS + RESPONSE_EVENTS
EventType = Literal[
    "run.completed",
    "run.failed",
    "run.cancelled",
    "response.completed",
    "response.failed",
    "response.cancelled",
    "response.incomplete",
]
DeliveryStatus = Literal["pending", "delivered", "failed"]
MAX_URL_LENGTH = 2000


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        min_length=1,
        max_length=MAX_URL_LENGTH,
        description="Where events are POSTed: an http(s) URL without user:password or "
        "fragment, on a public address (unless the server's webhook_allowed_hosts names it).",
    )
    event_types: list[EventType] = Field(
        min_length=1,
        max_length=len(EVENT_TYPES),
        description="The events this endpoint is sent: " + ", ".join(EVENT_TYPES) + ".",
    )
    description: str = Field(default="", max_length=500)


class WebhookOut(BaseModel):
    id: uuid.UUID
    url: str
    event_types: list[EventType]
    description: str
    created_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(
        description="The signing secret, whsec_<base64>, shown this once: store it now. "
        "Every delivery is signed with it (the webhook-signature header)."
    )


class WebhookList(BaseModel):
    data: list[WebhookOut]


class DeliveryOut(BaseModel):
    id: uuid.UUID
    webhook_id: uuid.UUID
    message_id: str = Field(description="The webhook-id header: the same on every attempt.")
    event_type: EventType
    run_uuid: uuid.UUID
    status: DeliveryStatus
    attempts: int = Field(description="Attempts made since the event (or its redelivery).")
    last_status_code: int | None = Field(description="The receiver's last HTTP status.")
    last_error: str | None = Field(description="Why the last attempt failed, if it did.")
    next_attempt_at: datetime | None = Field(description="Null once delivered or failed.")
    created_at: datetime
    delivered_at: datetime | None


class DeliveryPage(BaseModel):
    data: list[DeliveryOut] = Field(description="Newest first.")
    next_before: uuid.UUID | None = Field(
        description="Pass as ?before= to read the next (older) page; null on the last."
    )
