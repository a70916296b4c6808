"""Operator endpoints: ``/healthz`` (the process is up), ``/readyz`` (it can serve) and
``/metrics`` (Prometheus). ``/health`` stays where ``create_app`` defines it."""

from __future__ import annotations

from typing import Any, cast

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from pydantic import BaseModel, Field

from chatmodel_service.config import Settings
from chatmodel_service.deps import DatabaseDep, require_admin
from chatmodel_service.error_schemas import ServiceErrorBody
from chatmodel_service.observability.metrics import ServiceMetrics
from chatmodel_service.observability.readiness import check_ready

router = APIRouter(tags=["system"])


class Liveness(BaseModel):
    status: str = Field(examples=["ok"])


class Readiness(BaseModel):
    status: str = Field(examples=["ok"])
    revision: str = Field(description="The database's migration revision (the newest).")


@router.get("/healthz")
async def healthz() -> Liveness:
    """The process is up and serving HTTP; touches nothing else (a liveness probe)."""
    return Liveness(status="ok")


@router.get(
    "/readyz",
    responses={503: {"model": ServiceErrorBody, "description": "`not_ready`: which check."}},
)
async def readyz(database: DatabaseDep) -> Readiness:
    """The database answers and is migrated to this server's newest revision; otherwise
    503 `not_ready` naming the check that failed (a readiness probe)."""
    return Readiness(status="ok", revision=await check_ready(database))


METRICS_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Prometheus text exposition format.",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    }
}


async def metrics(request: Request) -> Response:
    """Every metric of this process, in Prometheus' text format."""
    registry = cast(ServiceMetrics, request.app.state.metrics)
    return Response(registry.render(), media_type=registry.content_type)


def install(app: FastAPI, settings: Settings) -> None:
    """Mount the routes; ``/metrics`` wants an admin key when keys are required, unless
    ``metrics_public`` is set (as every route, it needs none when keys are not required)."""
    app.include_router(router)
    app.add_api_route(
        "/metrics",
        metrics,
        methods=["GET"],
        tags=["system"],
        response_class=Response,
        responses=METRICS_RESPONSES,
        dependencies=[] if settings.metrics_public else [Depends(require_admin)],
    )
