"""Annotated dependency aliases used by the routers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated, cast

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from chatmodel_service.auth.service import LOCAL_ADMIN, Caller, authenticate
from chatmodel_service.config import Settings
from chatmodel_service.db import Database
from chatmodel_service.errors import Forbidden
from chatmodel_service.limits import RateLimiter
from chatmodel_service.llm.gateway import LLMGateway
from chatmodel_service.observability.request_context import note_key_name
from chatmodel_service.runs.background import BackgroundRuns

# auto_error=False: a missing key is our own 401 (with our body), not FastAPI's 403.
_bearer = HTTPBearer(auto_error=False, description="An API key: cm_<prefix>_<secret>.")
_api_key_header = APIKeyHeader(name="x-api-key", auto_error=False)


def get_database(request: Request) -> Database:
    return cast(Database, request.app.state.database)


def get_background_runs(request: Request) -> BackgroundRuns:
    """This process's background runs (built in the app's lifespan)."""
    return cast(BackgroundRuns, request.app.state.background_runs)


def get_gateway(request: Request) -> LLMGateway:
    return cast(LLMGateway, request.app.state.gateway)


def get_app_settings(request: Request) -> Settings:
    return cast(Settings, request.app.state.settings)


READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def unit_of_work(
    request: Request, database: Annotated[Database, Depends(get_database)]
) -> AsyncIterator[AsyncSession]:
    """The request's transaction: committed after the route returns, before the response.
    GET requests read; every other method's transaction is a write transaction."""
    async with database.transaction(write=request.method not in READ_METHODS) as session:
        yield session


async def current_caller(
    request: Request,
    database: Annotated[Database, Depends(get_database)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key_header)],
) -> Caller:
    """The caller behind the request's key (401 without a usable one), rate limited per
    key. With auth disabled, every request is the default project's admin."""
    if not request.app.state.auth_required:
        return LOCAL_ADMIN
    caller = await authenticate(database, bearer.credentials if bearer else api_key)
    assert caller.key_id is not None
    note_key_name(caller.key_name)  # for the request's log line
    cast(RateLimiter, request.app.state.rate_limiter).take(caller.key_id)
    return caller


def current_project(caller: Annotated[Caller, Depends(current_caller)]) -> uuid.UUID:
    """The caller's project: every query of a route is scoped to it."""
    return caller.project_id


def require_admin(caller: Annotated[Caller, Depends(current_caller)]) -> Caller:
    """Admin routes: a client key gets 403."""
    if caller.scope != "admin":
        raise Forbidden("This route needs an admin key; this is a client key.")
    return caller


DatabaseDep = Annotated[Database, Depends(get_database)]
GatewayDep = Annotated[LLMGateway, Depends(get_gateway)]
BackgroundRunsDep = Annotated[BackgroundRuns, Depends(get_background_runs)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
DbSession = Annotated[AsyncSession, Depends(unit_of_work, scope="function")]
CallerDep = Annotated[Caller, Depends(current_caller)]
ProjectId = Annotated[uuid.UUID, Depends(current_project)]
AdminCaller = Annotated[Caller, Depends(require_admin)]
AdminOnly = Depends(require_admin)
