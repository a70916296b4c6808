"""All SQL for chat models and their versions (releases: releases/repository.py)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from chatmodel_service.models import ChatModel, ChatModelVersion, Project


class ChatModelRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_by_name(self, project_id: uuid.UUID, name: str) -> ChatModel | None:
        result = await self.session.execute(
            select(ChatModel).where(ChatModel.project_id == project_id, ChatModel.name == name)
        )
        return result.scalar_one_or_none()

    async def list_for_project(self, project_id: uuid.UUID) -> list[ChatModel]:
        result = await self.session.execute(
            select(ChatModel).where(ChatModel.project_id == project_id).order_by(ChatModel.name)
        )
        return list(result.scalars())

    async def count_all(self) -> int:
        return int(await self.session.scalar(select(func.count()).select_from(ChatModel)) or 0)

    async def add(self, chat_model: ChatModel) -> ChatModel:
        self.session.add(chat_model)
        await self.session.flush()
        return chat_model

    async def update(self, chat_model: ChatModel, values: dict[str, Any]) -> None:
        """Write ``values`` (attribute -> value) to the chat model; ``updated_at`` too."""
        for attribute, value in values.items():
            setattr(chat_model, attribute, value)
        await self.session.flush()

    async def with_retention(self) -> list[tuple[ChatModel, str]]:
        """Every project's chat models that have ``retention_days``, with the project's
        name, by project and name."""
        rows = await self.session.execute(
            select(ChatModel, Project.name)
            .join(Project, Project.id == ChatModel.project_id)
            .where(ChatModel.retention_days.is_not(None))
            .order_by(Project.name, ChatModel.name)
        )
        return [(chat_model, project) for chat_model, project in rows]

    async def add_version(self, chat_model_id: uuid.UUID, **fields: Any) -> ChatModelVersion:
        """Insert the next version number (the unique constraint settles races)."""
        next_number = await self.session.scalar(
            select(func.coalesce(func.max(ChatModelVersion.number), 0) + 1).where(
                ChatModelVersion.chat_model_id == chat_model_id
            )
        )
        version = ChatModelVersion(
            chat_model_id=chat_model_id, number=int(next_number or 1), **fields
        )
        self.session.add(version)
        await self.session.flush()
        return version

    async def list_versions(self, chat_model_id: uuid.UUID) -> list[ChatModelVersion]:
        result = await self.session.execute(
            select(ChatModelVersion)
            .where(ChatModelVersion.chat_model_id == chat_model_id)
            .order_by(ChatModelVersion.number)
        )
        return list(result.scalars())

    async def get_version(self, chat_model_id: uuid.UUID, number: int) -> ChatModelVersion | None:
        result = await self.session.execute(
            select(ChatModelVersion).where(
                ChatModelVersion.chat_model_id == chat_model_id, ChatModelVersion.number == number
            )
        )
        return result.scalar_one_or_none()

    async def get_version_by_id(self, version_id: uuid.UUID) -> ChatModelVersion | None:
        return await self.session.get(ChatModelVersion, version_id)

    async def latest_version(self, chat_model_id: uuid.UUID) -> ChatModelVersion | None:
        result = await self.session.execute(
            select(ChatModelVersion)
            .where(ChatModelVersion.chat_model_id == chat_model_id)
            .order_by(ChatModelVersion.number.desc())
            .limit(1)
        )
        return result.scalar_one_or_none()
