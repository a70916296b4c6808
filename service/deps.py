"""Annotated dependency aliases used by the routers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated, cast

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from chatmodel_service.config import Settings
from chatmodel_service.db import Database
from chatmodel_service.llm.gateway import LLMGateway
from chatmodel_service.models import DEFAULT_PROJECT_ID


def get_database(request: Request) -> Database:
    return cast(Database, request.app.state.database)


def get_gateway(request: Request) -> LLMGateway:
    return cast(LLMGateway, request.app.state.gateway)


def get_app_settings(request: Request) -> Settings:
    return cast(Settings, request.app.state.settings)


async def unit_of_work(
    database: Annotated[Database, Depends(get_database)],
) -> AsyncIterator[AsyncSession]:
    """The request's transaction: committed after the route returns, before the response."""
    async with database.transaction() as session:
        yield session


def current_project() -> uuid.UUID:
    """The caller's project (the default one until API keys arrive)."""
    return DEFAULT_PROJECT_ID


DatabaseDep = Annotated[Database, Depends(get_database)]
GatewayDep = Annotated[LLMGateway, Depends(get_gateway)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
DbSession = Annotated[AsyncSession, Depends(unit_of_work, scope="function")]
ProjectId = Annotated[uuid.UUID, Depends(current_project)]
