"""All SQL of the promptmodel adapter: a version known only by its uuid (``make_session``
names no chat model), found within the caller's project."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from chatmodel_service.models import ChatModel, ChatModelVersion


class PromptmodelRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def version_in_project(
        self, project_id: uuid.UUID, version_id: uuid.UUID
    ) -> tuple[ChatModel, ChatModelVersion] | None:
        """The version with this uuid and its chat model, if the project owns them."""
        row = (
            await self.session.execute(
                select(ChatModel, ChatModelVersion)
                .join(ChatModelVersion, ChatModelVersion.chat_model_id == ChatModel.id)
                .where(ChatModelVersion.id == version_id, ChatModel.project_id == project_id)
            )
        ).one_or_none()
        return None if row is None else (row[0], row[1])
