"""Admin routes for chat models, versions, publishing and config."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query

from chatmodel_service.chat_models import service
from chatmodel_service.chat_models.schemas import (
    MAX_NUMBER,
    ChatModelConfig,
    ChatModelCreate,
    ChatModelList,
    ChatModelOut,
    PublishRequest,
    ReleaseOut,
    VersionCreate,
    VersionList,
    VersionOut,
    VersionSelector,
)
from chatmodel_service.deps import DbSession, ProjectId

router = APIRouter(prefix="/v1/chat-models", tags=["chat models"])

Name = Annotated[str, Path(description="The chat model's name.")]


@router.post("", status_code=201)
async def create_chat_model(
    body: ChatModelCreate, db: DbSession, project: ProjectId
) -> ChatModelOut:
    return await service.create_chat_model(db, project, body)


@router.get("")
async def list_chat_models(db: DbSession, project: ProjectId) -> ChatModelList:
    return await service.list_chat_models(db, project)


@router.get("/{name}")
async def get_chat_model(name: Name, db: DbSession, project: ProjectId) -> ChatModelOut:
    return await service.get_chat_model(db, project, name)


@router.post("/{name}/versions", status_code=201)
async def create_version(
    name: Name, body: VersionCreate, db: DbSession, project: ProjectId
) -> VersionOut:
    return await service.create_version(db, project, name, body)


@router.get("/{name}/versions")
async def list_versions(name: Name, db: DbSession, project: ProjectId) -> VersionList:
    return await service.list_versions(db, project, name)


@router.get("/{name}/versions/{number}")
async def get_version(
    name: Name, number: Annotated[int, Path(ge=1, le=MAX_NUMBER)], db: DbSession, project: ProjectId
) -> VersionOut:
    return await service.get_version(db, project, name, number)


@router.post("/{name}/publish")
async def publish_version(
    name: Name, body: PublishRequest, db: DbSession, project: ProjectId
) -> ReleaseOut:
    return await service.publish_version(db, project, name, body)


@router.get("/{name}/config")
async def get_config(
    name: Name,
    db: DbSession,
    project: ProjectId,
    version: Annotated[
        VersionSelector, Query(description='"deploy", "latest" or a number')
    ] = "deploy",
    session_uuid: Annotated[uuid.UUID | None, Query()] = None,
) -> ChatModelConfig:
    return await service.get_config(db, project, name, version, session_uuid)
