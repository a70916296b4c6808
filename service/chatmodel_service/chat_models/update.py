"""Changing a chat model's own settings: its description and its retention. Its prompts
change by adding versions, never here. Never commits."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from chatmodel_service.chat_models.repository import ChatModelRepository
from chatmodel_service.chat_models.schemas import ChatModelOut, ChatModelUpdate
from chatmodel_service.chat_models.service import get_chat_model, require_chat_model


async def update_chat_model(
    db: AsyncSession, project_id: uuid.UUID, name: str, body: ChatModelUpdate
) -> ChatModelOut:
    """Set the fields the body names (``retention_days: null`` keeps sessions forever)."""
    repo = ChatModelRepository(db)
    chat_model = await require_chat_model(repo, project_id, name)
    await repo.update(chat_model, body.model_dump(exclude_unset=True))
    return await get_chat_model(db, project_id, name)
