"""ORM tables only."""

from chatmodel_service.models.base import DEFAULT_PROJECT_ID, DEFAULT_PROJECT_NAME, Base
from chatmodel_service.models.tables import (
    MESSAGE_ROLES,
    ChatModel,
    ChatModelRelease,
    ChatModelVersion,
    ChatRun,
    ChatSession,
    Project,
    ReleaseVersion,
    SessionMessage,
)

__all__ = [
    "DEFAULT_PROJECT_ID",
    "DEFAULT_PROJECT_NAME",
    "MESSAGE_ROLES",
    "Base",
    "ChatModel",
    "ChatModelRelease",
    "ChatModelVersion",
    "ChatRun",
    "ChatSession",
    "Project",
    "ReleaseVersion",
    "SessionMessage",
]
