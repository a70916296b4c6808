"""Admin routes for API keys and projects. Keys are managed in the caller's own project."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from chatmodel_service.auth import service
from chatmodel_service.auth.schemas import (
    KeyCreate,
    KeyCreated,
    KeyList,
    KeyOut,
    ProjectCreate,
    ProjectCreated,
    ProjectList,
)
from chatmodel_service.deps import AdminCaller, DbSession

router = APIRouter(prefix="/v1", tags=["keys and projects"])


@router.post("/keys", status_code=201)
async def create_key(body: KeyCreate, db: DbSession, caller: AdminCaller) -> KeyCreated:
    """A new key of the caller's project. The response holds the key, this once only."""
    return await service.create_key(db, caller.project_id, body)


@router.get("/keys")
async def list_keys(db: DbSession, caller: AdminCaller) -> KeyList:
    return await service.list_keys(db, caller.project_id)


@router.delete("/keys/{key_id}")
async def revoke_key(key_id: uuid.UUID, db: DbSession, caller: AdminCaller) -> KeyOut:
    return await service.revoke_key(db, caller.project_id, key_id)


@router.post("/projects", status_code=201)
async def create_project(body: ProjectCreate, db: DbSession, caller: AdminCaller) -> ProjectCreated:
    """A new project and its first admin key (shown once); any admin key may create one."""
    return await service.create_project(db, body)


@router.get("/projects")
async def list_projects(db: DbSession, caller: AdminCaller) -> ProjectList:
    """The caller's own project (keys do not see other projects)."""
    return await service.list_projects(db, caller.project_id)
