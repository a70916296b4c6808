"""Admin routes for chat models, versions and config (publishing lives in releases/)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from chatmodel_service.chat_models import service
from chatmodel_service.chat_models.schemas import (
    MAX_NUMBER,
    ChatModelConfig,
    ChatModelCreate,
    ChatModelList,
    ChatModelOut,
    ChatModelUpdate,
    VersionCreate,
    VersionList,
    VersionOut,
    VersionSelector,
)
from chatmodel_service.deps import AdminOnly, DbSession, GatewayDep, ProjectId
from chatmodel_service.http_cache import (
    IMMUTABLE,
    NOT_MODIFIED_RESPONSE,
    REVALIDATE,
    IfNoneMatch,
    etag_for,
    json_response,
)

router = APIRouter(prefix="/v1/chat-models", tags=["chat models"])

Name = Annotated[str, Path(description="The chat model's name.")]


@router.post("", status_code=201, dependencies=[AdminOnly])
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


@router.patch("/{name}", dependencies=[AdminOnly])
async def update_chat_model(
    name: Name, body: ChatModelUpdate, db: DbSession, project: ProjectId
) -> ChatModelOut:
    """Change the description or the retention; fields left out keep their value."""
    return await service.update_chat_model(db, project, name, body)


@router.post("/{name}/versions", status_code=201, dependencies=[AdminOnly])
async def create_version(
    name: Name, body: VersionCreate, db: DbSession, project: ProjectId, gateway: GatewayDep
) -> VersionOut:
    return await service.create_version(db, project, name, body, gateway.check_model)


@router.get("/{name}/versions")
async def list_versions(name: Name, db: DbSession, project: ProjectId) -> VersionList:
    return await service.list_versions(db, project, name)


@router.get("/{name}/versions/{number}", response_model=VersionOut, responses=NOT_MODIFIED_RESPONSE)
async def get_version(
    name: Name,
    number: Annotated[int, Path(ge=1, le=MAX_NUMBER)],
    db: DbSession,
    project: ProjectId,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """A version never changes: cacheable for a year, with a strong ETag."""
    version = await service.get_version(db, project, name, number)
    return json_response(
        version, etag=etag_for(version.uuid), cache_control=IMMUTABLE, if_none_match=if_none_match
    )


@router.get("/{name}/config", response_model=ChatModelConfig, responses=NOT_MODIFIED_RESPONSE)
async def get_config(
    name: Name,
    db: DbSession,
    project: ProjectId,
    version: Annotated[
        VersionSelector,
        Query(
            description='A label ("production", also "deploy"; "staging"; an admin-defined '
            'one), "latest" or a number'
        ),
    ] = "deploy",
    session_uuid: Annotated[uuid.UUID | None, Query()] = None,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """Without a session: an ETag that changes when publishing changes the answer, and
    ``no-cache`` (revalidate every time). With a session: no ETag."""
    read = await service.get_config(db, project, name, version, session_uuid)
    if read.etag is None:
        return json_response(read.config)
    return json_response(
        read.config, etag=read.etag, cache_control=REVALIDATE, if_none_match=if_none_match
    )
