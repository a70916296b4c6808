"""The run route. It takes the database factory, not a request transaction: a run
must not hold a transaction open while the model answers."""

from __future__ import annotations

import uuid
from typing import Annotated

from chatmodel_service.deps import DatabaseDep, GatewayDep, ProjectId, SettingsDep
from chatmodel_service.runs.schemas import LLMResponse, RunRequest
from chatmodel_service.runs.service import run_session
from fastapi import APIRouter, Body

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
