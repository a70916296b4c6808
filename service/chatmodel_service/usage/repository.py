"""All SQL of the usage report: one aggregate query over the project's runs."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, String, case, func, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from chatmodel_service.models import ChatModel, ChatModelVersion, ChatRun
from chatmodel_service.usage.schemas import GroupBy


@dataclass(frozen=True)
class UsageRow:
    """One group's sums; ``group`` is (chat model, version), (day,) or (key name,)."""

    group: tuple[Any, ...]
    runs: int
    errors: int
    prompt_tokens: int
    completion_tokens: int
    cost: float | None


class UsageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def _utc_day(self) -> ColumnElement[str]:
        """A run's UTC day as ``YYYY-MM-DD`` text. SQLite stores UTC timestamps as text
        (``UTCDateTime``); PostgreSQL's are ``timestamptz``, read in UTC whatever the
        connection's time zone."""
        if self.session.get_bind().dialect.name == "postgresql":
            utc = func.timezone("UTC", ChatRun.created_at)
            return type_coerce(func.to_char(utc, "YYYY-MM-DD"), String)
        return type_coerce(func.date(ChatRun.created_at), String)

    def _group_columns(
        self, group_by: GroupBy
    ) -> list[ColumnElement[Any] | QueryableAttribute[Any]]:
        if group_by == "version":
            return [ChatModel.name, ChatModelVersion.number]
        if group_by == "day":
            return [self._utc_day()]
        return [ChatRun.key_name]

    async def usage(
        self,
        project_id: uuid.UUID,
        chat_model_id: uuid.UUID | None,
        start: dt.datetime,
        end: dt.datetime,
        group_by: GroupBy,
    ) -> list[UsageRow]:
        """Sums per group over the runs of the project's chat models (``chat_model_id``:
        one of them) started in ``[start, end)``, with or without a session."""
        columns = self._group_columns(group_by)
        query = (
            select(
                *columns,
                func.count(),
                func.coalesce(func.sum(case((ChatRun.status == "failed", 1), else_=0)), 0),
                func.coalesce(func.sum(ChatRun.prompt_tokens), 0),
                func.coalesce(func.sum(ChatRun.completion_tokens), 0),
                func.sum(ChatRun.cost),
            )
            .select_from(ChatRun)
            .join(ChatModelVersion, ChatModelVersion.id == ChatRun.version_id)
            .join(ChatModel, ChatModel.id == ChatModelVersion.chat_model_id)
            .where(
                ChatModel.project_id == project_id,
                ChatRun.created_at >= start,
                ChatRun.created_at < end,
            )
            .group_by(*columns)
        )
        if chat_model_id is not None:
            query = query.where(ChatModelVersion.chat_model_id == chat_model_id)
        width = len(columns)
        return [
            UsageRow(
                group=tuple(row[:width]),
                runs=int(row[width]),
                errors=int(row[width + 1]),
                prompt_tokens=int(row[width + 2]),
                completion_tokens=int(row[width + 3]),
                cost=float(row[width + 4]) if row[width + 4] is not None else None,
            )
            for row in await self.session.execute(query)
        ]
