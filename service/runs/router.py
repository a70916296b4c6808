"""The run route. It takes the database factory, not a request transaction: a run
must not hold a transaction open while the model answers."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body

from chatmodel_service.deps import DatabaseDep, DbSession, GatewayDep, ProjectId, SettingsDep
from chatmodel_service.runs.schemas import LLMResponse, RunList, RunRequest
from chatmodel_service.runs.service import list_runs, run_session

router = APIRouter(prefix="/v1/sessions", tags=["runs"])


@router.post("/{session_uuid}/run")
async def run(
    session_uuid: uuid.UUID,
    database: DatabaseDep,
    gateway: GatewayDep,
    settings: SettingsDep,
    project: ProjectId,
    body: Annotated[RunRequest | None, Body()] = None,
) -> LLMResponse:
    return await run_session(
        database, gateway, settings, project, session_uuid, body or RunRequest()
    )


@router.get("/{session_uuid}/runs")
async def get_runs(session_uuid: uuid.UUID, db: DbSession, project: ProjectId) -> RunList:
    return await list_runs(db, project, session_uuid)
