"""ORM tables only."""

from chatmodel_service.models.base import DEFAULT_PROJECT_ID, DEFAULT_PROJECT_NAME, Base
from chatmodel_service.models.tables import (
    KEY_SCOPES,
    MESSAGE_ROLES,
    ApiKey,
    ChatModel,
    ChatModelRelease,
    ChatModelVersion,
    ChatRun,
    ChatSession,
    Feedback,
    Project,
    ReleaseVersion,
    RunEventBatch,
    SessionMessage,
    SessionSummary,
    WebhookDelivery,
    WebhookEndpoint,
)

__all__ = [
    "DEFAULT_PROJECT_ID",
    "DEFAULT_PROJECT_NAME",
    "KEY_SCOPES",
    "MESSAGE_ROLES",
    "ApiKey",
    "Base",
    "ChatModel",
    "ChatModelRelease",
    "ChatModelVersion",
    "ChatRun",
    "ChatSession",
    "Feedback",
    "Project",
    "ReleaseVersion",
    "RunEventBatch",
    "SessionMessage",
    "SessionSummary",
    "WebhookDelivery",
    "WebhookEndpoint",
]
