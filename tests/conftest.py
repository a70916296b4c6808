"""Test harness: a freshly migrated SQLite database per test, the real app with its
lifespan, the real LiteLLM gateway (imported once), and a scripted OpenAI-compatible
server on 127.0.0.1 for upstream behaviour. Nothing here reaches the internet."""

from __future__ import annotations

import os

# Before anything imports LiteLLM: read its cost map from the package, not the internet,
# and give the OpenAI provider a key (the scripted server ignores it).
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
os.environ.setdefault("OPENAI_API_KEY", "sk-test-not-a-real-key")

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from chatmodel_service.app import create_app
from chatmodel_service.config import Settings
from chatmodel_service.llm.gateway import LLMGateway, create_gateway
from chatmodel_service.migrate import upgrade
from tests.support.auth import auth_app, world
from tests.support.llm_server import llm_server, llm_server_session
from tests.support.servers import live_app, served

__all__ = ["auth_app", "live_app", "llm_server", "llm_server_session", "served", "world"]


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One database migrated to head; each test gets its own copy of it."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(sqlite_url(path))
    return path


@pytest.fixture
def database_url(tmp_path: Path, migrated_template: Path) -> str:
    path = tmp_path / "chatmodel.db"
    shutil.copyfile(migrated_template, path)
    return sqlite_url(path)


@pytest.fixture(scope="session")
def gateway() -> LLMGateway:
    return create_gateway()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, seed_demo=False, llm_timeout_seconds=5)


@pytest.fixture
async def app(settings: Settings, gateway: LLMGateway) -> AsyncIterator[FastAPI]:
    application = create_app(settings, gateway)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://chatmodel.test") as c:
        yield c
