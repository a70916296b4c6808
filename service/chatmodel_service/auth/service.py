"""Keys and projects: create, list, revoke, and resolve a request's key to its caller.

Never commits (the request's unit of work does), except ``authenticate``, which runs in
its own short transaction before the route's.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from chatmodel_service.auth.keys import generate_key, key_prefix, matches
from chatmodel_service.auth.repository import ApiKeyRepository, ProjectRepository
from chatmodel_service.auth.schemas import (
    KeyCreate,
    KeyCreated,
    KeyList,
    KeyOut,
    KeyScope,
    ProjectCreate,
    ProjectCreated,
    ProjectList,
    ProjectOut,
)
from chatmodel_service.db import Database
from chatmodel_service.errors import AlreadyExists, NotFound, Unauthorized
from chatmodel_service.models import DEFAULT_PROJECT_ID, ApiKey, Project
from chatmodel_service.models.base import utcnow

# last_used_at is written at most this often per key (not on every request).
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class Caller:
    """Who is asking: the key's project, scope and name (no key: auth is disabled)."""

    project_id: uuid.UUID
    scope: KeyScope
    key_id: uuid.UUID | None = None
    key_name: str | None = None


# Every request, when auth is disabled (a loopback-only server).
LOCAL_ADMIN = Caller(project_id=DEFAULT_PROJECT_ID, scope="admin")


def _scope(value: str) -> KeyScope:
    if value == "admin":
        return "admin"
    if value == "client":
        return "client"
    raise ValueError(f"unknown key scope {value!r}")


def key_out(key: ApiKey, project: str) -> KeyOut:
    return KeyOut(
        id=key.id,
        project=project,
        name=key.name,
        scope=_scope(key.scope),
        prefix=key.prefix,
        created_at=key.created_at,
        last_used_at=key.last_used_at,
        revoked_at=key.revoked_at,
    )


async def authenticate(database: Database, presented: str | None) -> Caller:
    """The caller behind ``presented``; 401 when it is missing, malformed, unknown or
    revoked. The key itself never appears in an error message or a log line."""
    if not presented:
        raise Unauthorized(
            "An API key is required: send 'Authorization: Bearer KEY' or 'x-api-key: KEY'."
        )
    prefix = key_prefix(presented)
    if prefix is None:
        raise Unauthorized("The API key is malformed (expected cm_<prefix>_<secret>).")
    async with database.transaction(write=False) as db:
        key = await ApiKeyRepository(db).by_prefix(prefix)
    if key is None or not matches(presented, key.hash):
        raise Unauthorized(f"The API key cm_{prefix}_… is not known.")
    if key.revoked_at is not None:
        raise Unauthorized(f"The API key cm_{prefix}_… was revoked.")
    now = utcnow()
    # A write only when last_used_at is due, so most requests authenticate on a read.
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        async with database.transaction() as db:
            await ApiKeyRepository(db).mark_used(key.id, now)
    return Caller(key.project_id, _scope(key.scope), key.id, key.name)


async def _project_name(db: AsyncSession, project_id: uuid.UUID) -> str:
    project = await ProjectRepository(db).get(project_id)
    if project is None:
        raise NotFound(f"Project {project_id} does not exist.")
    return project.name


async def create_key(db: AsyncSession, project_id: uuid.UUID, body: KeyCreate) -> KeyCreated:
    """A new key of the project; the response is the only place the key ever appears."""
    project = await _project_name(db, project_id)
    new = generate_key()
    key = await ApiKeyRepository(db).add(
        ApiKey(
            project_id=project_id,
            name=body.name,
            scope=body.scope,
            prefix=new.prefix,
            hash=new.hash,
        )
    )
    return KeyCreated(**key_out(key, project).model_dump(), key=new.key)


async def list_keys(db: AsyncSession, project_id: uuid.UUID) -> KeyList:
    project = await _project_name(db, project_id)
    keys = await ApiKeyRepository(db).list_for_project(project_id)
    return KeyList(data=[key_out(key, project) for key in keys])


async def revoke_key(db: AsyncSession, project_id: uuid.UUID, key_id: uuid.UUID) -> KeyOut:
    """Revoke a key of the project (again: no change). Another project's key: 404."""
    project = await _project_name(db, project_id)
    key = await ApiKeyRepository(db).get(project_id, key_id)
    if key is None:
        raise NotFound(f"This project has no API key {key_id}.", field="key_id")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        await db.flush()
    return key_out(key, project)


def project_out(project: Project) -> ProjectOut:
    return ProjectOut(id=project.id, name=project.name, created_at=project.created_at)


async def create_project(db: AsyncSession, body: ProjectCreate) -> ProjectCreated:
    """A new project with its first admin key (shown once): the only way into it."""
    projects = ProjectRepository(db)
    if await projects.get_by_name(body.name) is not None:
        raise AlreadyExists(f"Project '{body.name}' already exists.", field="name")
    project = await projects.add(Project(name=body.name))
    admin_key = await create_key(db, project.id, KeyCreate(name=body.admin_key_name, scope="admin"))
    return ProjectCreated(**project_out(project).model_dump(), admin_key=admin_key)


async def list_projects(db: AsyncSession, project_id: uuid.UUID) -> ProjectList:
    """The caller's own project: a key never learns what other projects exist."""
    project = await ProjectRepository(db).get(project_id)
    return ProjectList(data=[project_out(project)] if project else [])
