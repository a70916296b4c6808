"""promptmodel's wire format: what its SDK (0.2.1) sends to ``/api/cli`` and reads back.

Bodies are read leniently (LiteLLM adds fields such as ``provider_specific_fields`` from
release to release); answers carry exactly the fields the SDK reads.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from chatmodel_service.free_json import FreeJSON


class LenientModel(BaseModel):
    """A body written by another project's SDK: unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore")


class LoggedMessage(LenientModel):
    """A message as the SDK logs it (``Message.model_dump()`` or a dict the user wrote)."""

    role: str
    content: str | None = None
    name: str | None = None
    function_call: dict[str, Any] | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None


class ChatLogItem(LenientModel):
    """One ``ChatLogRequest``: a message, or with ``api_response`` a reply the SDK's own
    LiteLLM produced (a client-side run)."""

    uuid: UUID | None = None
    message: LoggedMessage
    metadata: FreeJSON | None = None
    api_response: FreeJSON | None = None  # stored with the run: held to the JSON limits


class ChatModelVersionOut(BaseModel):
    uuid: UUID
    version: int
    model: str
    system_prompt: str
    is_published: bool
    # Only read for "deploy" without a session; the SDK sets a published one's to 1.0.
    ratio: float | None = None


class ChatLogOut(BaseModel):
    """A stored message as the SDK replays it to the model (None fields it drops)."""

    role: str
    content: str | None = None
    name: str | None = None
    function_call: dict[str, Any] | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None


class VersionsWithLogs(BaseModel):
    chat_model_versions: list[ChatModelVersionOut]
    chat_logs: list[ChatLogOut] = Field(default_factory=list)


class SessionMade(BaseModel):
    session_uuid: UUID
    version_uuid: UUID
    created: bool


class ChatLogStored(BaseModel):
    session_uuid: UUID
    message_uuids: list[UUID]
    run_uuids: list[UUID]


class UpdateCheck(BaseModel):
    """No deployment cache to refresh: configs are read live on every call."""

    need_update: bool = False
    version: int = 0
    project_status: dict[str, Any] | None = None
