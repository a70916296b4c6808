"""Admin routes for publishing (single, split, rollback), the release history, and the
per-version figures and diffs used to judge a release."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Path, Query

from chatmodel_service.chat_models.schemas import MAX_NUMBER
from chatmodel_service.deps import AdminCaller, AdminOnly, DbSession, ProjectId
from chatmodel_service.releases import compare, service
from chatmodel_service.releases.labels import ALL_LABELS, PRODUCTION
from chatmodel_service.releases.schemas import (
    LabelName,
    PublishRequest,
    ReleaseList,
    ReleaseOut,
    RollbackRequest,
    VersionDiff,
    VersionStats,
)

# Publishing and the figures used to judge a release are admin work.
router = APIRouter(prefix="/v1/chat-models", tags=["releases"], dependencies=[AdminOnly])

Name = Annotated[str, Path(description="The chat model's name.")]
Number = Annotated[int, Path(ge=1, le=MAX_NUMBER)]


@router.post("/{name}/publish")
async def publish(
    name: Name, body: PublishRequest, db: DbSession, project: ProjectId, caller: AdminCaller
) -> ReleaseOut:
    return await service.publish(db, project, name, body, caller.key_name)


@router.post("/{name}/rollback")
async def roll_back(
    name: Name,
    db: DbSession,
    project: ProjectId,
    caller: AdminCaller,
    body: Annotated[RollbackRequest | None, Body()] = None,
) -> ReleaseOut:
    return await service.roll_back(db, project, name, body or RollbackRequest(), caller.key_name)


@router.get("/{name}/releases")
async def list_releases(
    name: Name,
    db: DbSession,
    project: ProjectId,
    label: Annotated[
        LabelName | Literal["all"],
        Query(description='One label\'s history ("deploy" is "production"), or "all".'),
    ] = PRODUCTION,
) -> ReleaseList:
    return await service.list_releases(db, project, name, None if label == ALL_LABELS else label)


@router.get("/{name}/versions/{number}/stats")
async def version_stats(
    name: Name, number: Number, db: DbSession, project: ProjectId
) -> VersionStats:
    return await compare.version_stats(db, project, name, number)


@router.get("/{name}/diff")
async def version_diff(
    name: Name,
    db: DbSession,
    project: ProjectId,
    from_: Annotated[int, Query(alias="from", ge=1, le=MAX_NUMBER)],
    to: Annotated[int, Query(ge=1, le=MAX_NUMBER)],
) -> VersionDiff:
    return await compare.version_diff(db, project, name, from_, to)
