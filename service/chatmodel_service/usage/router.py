"""``GET /v1/usage``: admin keys only, always scoped to the caller's project."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from chatmodel_service.deps import AdminOnly, DbSession, ProjectId
from chatmodel_service.usage import service
from chatmodel_service.usage.schemas import GroupByParam, UsageReport

router = APIRouter(prefix="/v1", tags=["usage"], dependencies=[AdminOnly])

WHEN = (
    "An ISO 8601 date (`2026-11-01`) or datetime (`2026-11-01T12:00:00Z`); UTC unless it "
    "has an offset."
)


@router.get("/usage")
async def get_usage(
    db: DbSession,
    project: ProjectId,
    chat_model: Annotated[
        str | None, Query(description="Only this chat model's runs (default: all).")
    ] = None,
    start: Annotated[
        str | None,
        Query(
            alias="from",
            description=f"Window start, included (default: 30 days before `to`). {WHEN}",
        ),
    ] = None,
    end: Annotated[
        str | None,
        Query(
            alias="to",
            description=f"Window end, excluded; a date counts that whole day "
            f"(default: now). {WHEN}",
        ),
    ] = None,
    group_by: Annotated[
        GroupByParam,
        Query(
            description="One row per version, UTC day or API key (`version`, `day`, "
            "`key`), or per combination of them joined by commas: `version,day` gives "
            "one row per version per day."
        ),
    ] = "version",
) -> UsageReport:
    """Runs, errors and error rate, tokens, cost and latency p95 of the project's runs
    (with a session or without), per group and in total, over a window of at most 366
    days."""
    return await service.usage_report(db, project, chat_model, start, end, group_by)
