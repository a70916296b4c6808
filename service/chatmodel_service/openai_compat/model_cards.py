"""``GET /v1/models``: the chat models a call can name, as OpenAI's model cards."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from chatmodel_service.chat_models.service import list_chat_models
from chatmodel_service.errors import ChatModelNotFound
from chatmodel_service.openai_compat.schemas import ModelCard, ModelList


async def list_models(db: AsyncSession, project_id: uuid.UUID) -> ModelList:
    """The project's chat models that have a published version (those a call can use)."""
    chat_models = await list_chat_models(db, project_id)
    return ModelList(
        data=[
            ModelCard(id=chat_model.name, created=int(chat_model.created_at.timestamp()))
            for chat_model in chat_models.data
            if chat_model.published_versions
        ]
    )


async def get_model(db: AsyncSession, project_id: uuid.UUID, name: str) -> ModelCard:
    for card in (await list_models(db, project_id)).data:
        if card.id == name:
            return card
    raise ChatModelNotFound(
        f"The model '{name}' does not exist: no chat model of this project with a published "
        "version has that name.",
        field="model",
    )
