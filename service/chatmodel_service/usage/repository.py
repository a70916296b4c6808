"""All SQL of the usage report: one aggregate query over the project's runs, the run
totals (``RunTotals``) it sums and the latency percentile (``latency_percentile``) it
ranks, which a version's figures (``releases``) use too."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, String, case, func, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from chatmodel_service.models import ChatModel, ChatModelVersion, ChatRun
from chatmodel_service.usage.schemas import GroupBy

GroupColumn = ColumnElement[Any] | QueryableAttribute[Any]


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


def latency_percentile(
    percent: int, runs: Select[Any], group: Sequence[GroupColumn] = ()
) -> Select[Any]:
    """The nearest-rank ``percent``th percentile of run latency per group of ``runs``:
    of a group's n runs, the ceil(percent / 100 * n)-th smallest ``latency_ms``.

    ``runs`` selects ``ChatRun`` rows (its joins and filters are kept, its columns are
    replaced); the query selects the ``group`` columns, then the percentile, one row per
    group (one row for all runs without ``group``, NULL if there is none). A window
    function ranks each group's runs, so all groups cost one query on SQLite and
    PostgreSQL alike; the rank is compared in integers (rank * 100 >= percent * n), so
    no float rounding picks the neighbouring run."""
    partition = list(group) or None
    ranked = runs.with_only_columns(
        *(column.label(f"group_{index}") for index, column in enumerate(group)),
        ChatRun.latency_ms.label("latency_ms"),
        func.row_number()
        .over(partition_by=partition, order_by=ChatRun.latency_ms)
        .label("position"),
        func.count().over(partition_by=partition).label("runs"),
    ).subquery()
    keys = [ranked.c[f"group_{index}"] for index in range(len(group))]
    return (
        select(*keys, func.min(ranked.c.latency_ms))
        .where(ranked.c.position * 100 >= percent * ranked.c.runs)
        .group_by(*keys)
    )


@dataclass(frozen=True)
class UsageRow(RunTotals):
    """One group's sums and latency p95; ``group`` holds each grouping's values in the
    order asked for: (chat model, version) for ``version``, (day,) for ``day``, (key
    name,) for ``key``."""

    latency_p95: int | None
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

    def _group_columns(self, group_by: Sequence[GroupBy]) -> list[GroupColumn]:
        columns: list[GroupColumn] = []
        for grouping in group_by:
            if grouping == "version":
                columns += [ChatModel.name, ChatModelVersion.number]
            elif grouping == "day":
                columns.append(self._utc_day())
            else:
                columns.append(ChatRun.key_name)
        return columns

    @staticmethod
    def _runs(
        project_id: uuid.UUID,
        chat_model_id: uuid.UUID | None,
        start: dt.datetime,
        end: dt.datetime,
    ) -> Select[Any]:
        """The runs of the project's chat models (``chat_model_id``: one of them) started
        in ``[start, end)``, with or without a session."""
        query = (
            select(ChatRun)
            .join(ChatModelVersion, ChatModelVersion.id == ChatRun.version_id)
            .join(ChatModel, ChatModel.id == ChatModelVersion.chat_model_id)
            .where(
                ChatModel.project_id == project_id,
                ChatRun.created_at >= start,
                ChatRun.created_at < end,
            )
        )
        if chat_model_id is not None:
            query = query.where(ChatModelVersion.chat_model_id == chat_model_id)
        return query

    async def usage(
        self,
        project_id: uuid.UUID,
        chat_model_id: uuid.UUID | None,
        start: dt.datetime,
        end: dt.datetime,
        group_by: Sequence[GroupBy],
    ) -> list[UsageRow]:
        """Sums and latency p95 per group of ``_runs`` (two queries)."""
        runs = self._runs(project_id, chat_model_id, start, end)
        columns = self._group_columns(group_by)
        width = len(columns)
        p95 = {
            tuple(row[:width]): row[width]
            for row in await self.session.execute(latency_percentile(95, runs, columns))
        }
        sums = runs.with_only_columns(*columns, *RunTotals.columns()).group_by(*columns)
        rows = []
        for row in await self.session.execute(sums):
            group = tuple(row[:width])
            latency = p95.get(group)
            rows.append(
                UsageRow(
                    group=group,
                    latency_p95=int(latency) if latency is not None else None,
                    **asdict(RunTotals.read(row[width:])),
                )
            )
        return rows

    async def latency_p95(
        self,
        project_id: uuid.UUID,
        chat_model_id: uuid.UUID | None,
        start: dt.datetime,
        end: dt.datetime,
    ) -> int | None:
        """The latency p95 of all of ``_runs`` together (None without runs)."""
        runs = self._runs(project_id, chat_model_id, start, end)
        value = await self.session.scalar(latency_percentile(95, runs))
        return int(value) if value is not None else None
