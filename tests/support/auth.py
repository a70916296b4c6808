"""An app with API keys required, and a world of two projects with keys of each scope.

Project A is the default project (a chat model "assistant" with two releases, a session);
project B is empty. Keys are created through the service, as ``chatmodel keys create`` does.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

from chatmodel_service.app import create_app
from chatmodel_service.auth.repository import ProjectRepository
from chatmodel_service.auth.schemas import KeyCreate, KeyScope
from chatmodel_service.auth.service import create_key
from chatmodel_service.config import Settings
from chatmodel_service.db import Database
from chatmodel_service.llm import OFFLINE_MODEL
from chatmodel_service.llm.gateway import LLMGateway
from chatmodel_service.models import Project

BASE_URL = "http://chatmodel.test"


async def seed_key(
    app: FastAPI, scope: KeyScope, name: str, project: str = "default"
) -> tuple[str, uuid.UUID]:
    """A new key (and project, if new) written straight to the database: (key, key id)."""
    database: Database = app.state.database
    async with database.transaction() as db:
        projects = ProjectRepository(db)
        found = await projects.get_by_name(project) or await projects.add(Project(name=project))
        created = await create_key(db, found.id, KeyCreate(name=name, scope=scope))
    return created.key, created.id


def keyed(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@dataclass
class AuthWorld:
    app: FastAPI
    client: httpx.AsyncClient  # no key
    admin_a: str
    client_a: str
    revoked_a: str
    victim_a_id: uuid.UUID  # a key of A that DELETE /v1/keys/{id} may revoke
    admin_b: str
    client_b: str
    session_a: str


def auth_settings(database_url: str, **overrides: object) -> Settings:
    fields: dict[str, object] = {
        "database_url": database_url,
        "seed_demo": False,
        "llm_timeout_seconds": 5,
        "auth": "required",
        "rate_limit_per_minute": 0,
        "webhook_allowed_hosts": ["127.0.0.1"],  # webhooks to a closed local port only
    }
    return Settings.model_validate(fields | overrides)


@asynccontextmanager
async def started_app(
    database_url: str, gateway: LLMGateway, **overrides: object
) -> AsyncIterator[FastAPI]:
    """An app with keys required (and ``overrides``), its lifespan started."""
    application = create_app(auth_settings(database_url, **overrides), gateway)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def auth_app(database_url: str, gateway: LLMGateway) -> AsyncIterator[FastAPI]:
    async with started_app(database_url, gateway) as application:
        yield application


@pytest.fixture
async def world(auth_app: FastAPI) -> AsyncIterator[AuthWorld]:
    admin_a, _ = await seed_key(auth_app, "admin", "ops")
    client_a, _ = await seed_key(auth_app, "client", "web")
    revoked_a, revoked_id = await seed_key(auth_app, "client", "old")
    _, victim_id = await seed_key(auth_app, "client", "victim")
    admin_b, _ = await seed_key(auth_app, "admin", "b-ops", project="b")
    client_b, _ = await seed_key(auth_app, "client", "b-web", project="b")
    transport = httpx.ASGITransport(app=auth_app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        admin = keyed(admin_a)
        revoked = await client.delete(f"/v1/keys/{revoked_id}", headers=admin)
        assert revoked.status_code == 200, revoked.text
        created = await client.post("/v1/chat-models", json={"name": "assistant"}, headers=admin)
        assert created.status_code == 201, created.text
        version = {"system_prompt": "Be brief.", "model": OFFLINE_MODEL, "publish": True}
        for _ in range(2):  # two releases, so a rollback has something to go back to
            made = await client.post(
                "/v1/chat-models/assistant/versions", json=version, headers=admin
            )
            assert made.status_code == 201, made.text
        session = await client.post(
            "/v1/sessions", json={"chat_model": "assistant"}, headers=keyed(client_a)
        )
        assert session.status_code == 201, session.text
        yield AuthWorld(
            app=auth_app,
            client=client,
            admin_a=admin_a,
            client_a=client_a,
            revoked_a=revoked_a,
            victim_a_id=victim_id,
            admin_b=admin_b,
            client_b=client_b,
            session_a=session.json()["uuid"],
        )


__all__ = [
    "AuthWorld",
    "auth_app",
    "auth_settings",
    "keyed",
    "seed_key",
    "started_app",
    "world",
]
