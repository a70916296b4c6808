"""All SQL of the usage report: one aggregate query over the project's runs, and the
run totals (``RunTotals``) it sums, which a version's figures (``releases``) sum too."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import ColumnElement, String, case, func, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from chatmodel_service.models import ChatModel, ChatModelVersion, ChatRun
from chatmodel_service.usage.schemas import GroupBy


@dataclass(frozen=True)
class RunTotals:
    """What a set of runs adds up to: how many, how many failed, their tokens, and their
    cost (None when no run has one). Selected with ``columns()``, read with ``read()``."""

    runs: int
    failed_runs: int
    prompt_tokens: int
    completion_tokens: int
    cost: float | None

    @staticmethod
    def columns() -> tuple[ColumnElement[Any], ...]:
        """The aggregates over the ``ChatRun`` rows a query selects, in field order."""
        return (
            func.count(),
            func.coalesce(func.sum(case((ChatRun.status == "failed", 1), else_=0)), 0),
            func.coalesce(func.sum(ChatRun.prompt_tokens), 0),
            func.coalesce(func.sum(ChatRun.completion_tokens), 0),
            func.sum(ChatRun.cost),
        )

    @staticmethod
    def read(values: Sequence[Any]) -> RunTotals:
        """The totals in ``values``: what ``columns()`` selected, in its order."""
        runs, failed_runs, prompt_tokens, completion_tokens, cost = values
        return RunTotals(
            runs=int(runs),
            failed_runs=int(failed_runs),
            prompt_tokens=int(prompt_tokens),
            completion_tokens=int(completion_tokens),
            cost=float(cost) if cost is not None else None,
        )


@dataclass(frozen=True)
class UsageRow(RunTotals):
    """One group's sums; ``group`` is (chat model, version), (day,) or (key name,)."""

    group: tuple[Any, ...]


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
            select(*columns, *RunTotals.columns())
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
            UsageRow(group=tuple(row[:width]), **asdict(RunTotals.read(row[width:])))
            for row in await self.session.execute(query)
        ]
