"""The usage report: resolve the window and the chat model, sum the runs per group.

``from`` and ``to`` are ISO 8601 datetimes or dates, in UTC unless they carry an offset.
The window is ``from <= run start < to``: a date as ``from`` starts at that day's
midnight, a date as ``to`` ends after that whole day. Without ``to`` the window ends now;
without ``from`` it starts 30 days before ``to``; it spans at most 366 days.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from chatmodel_service.chat_models.repository import ChatModelRepository
from chatmodel_service.errors import ChatModelNotFound, InvalidInput
from chatmodel_service.models.base import utcnow
from chatmodel_service.sessions.schemas import total_tokens
from chatmodel_service.usage.repository import UsageRepository, UsageRow
from chatmodel_service.usage.schemas import GroupBy, UsageFigures, UsageGroup, UsageReport

DEFAULT_SPAN = dt.timedelta(days=30)
MAX_SPAN = dt.timedelta(days=366)


@dataclass(frozen=True)
class UsageWindow:
    start: dt.datetime
    end: dt.datetime


def _instant(text: str, field: Literal["from", "to"]) -> dt.datetime:
    """``text`` as an aware UTC datetime; a bare date is that day's start (``from``) or
    the next day's (``to``, so the whole day is counted)."""
    value = text.strip()
    try:
        if len(value) == 10:  # YYYY-MM-DD
            day = dt.date.fromisoformat(value)
            if field == "to":
                day += dt.timedelta(days=1)
            return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
        moment = dt.datetime.fromisoformat(value)
        if moment.tzinfo is None:
            return moment.replace(tzinfo=dt.UTC)
        return moment.astimezone(dt.UTC)
    except (ValueError, OverflowError):
        raise InvalidInput(
            f"{field} must be an ISO 8601 date (2026-11-01) or datetime "
            f"(2026-11-01T12:00:00Z), not {text!r}.",
            field=field,
        ) from None


def usage_window(start: str | None, end: str | None, now: dt.datetime) -> UsageWindow:
    """The ``[from, to)`` window the request names (see the module doc)."""
    end_at = _instant(end, "to") if end is not None else now
    try:
        start_at = _instant(start, "from") if start is not None else end_at - DEFAULT_SPAN
    except OverflowError:  # ``to`` within 30 days of year 1
        start_at = dt.datetime.min.replace(tzinfo=dt.UTC)
    if start_at > end_at:
        raise InvalidInput("from is after to: the window would be empty.", field="from")
    if end_at - start_at > MAX_SPAN:
        raise InvalidInput(
            f"The window spans more than {MAX_SPAN.days} days; ask for a shorter one.",
            field="from",
        )
    return UsageWindow(start_at, end_at)


def _figures(rows: list[UsageRow]) -> UsageFigures:
    costs = [row.cost for row in rows if row.cost is not None]
    prompt = sum(row.prompt_tokens for row in rows)
    completion = sum(row.completion_tokens for row in rows)
    return UsageFigures(
        runs=sum(row.runs for row in rows),
        errors=sum(row.failed_runs for row in rows),
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=total_tokens(prompt, completion),
        cost=sum(costs) if costs else None,
    )


def _group(row: UsageRow, group_by: GroupBy) -> UsageGroup:
    figures = _figures([row]).model_dump()
    if group_by == "version":
        chat_model, number = row.group
        return UsageGroup(chat_model=chat_model, version=int(number), **figures)
    if group_by == "day":
        return UsageGroup(day=dt.date.fromisoformat(str(row.group[0])), **figures)
    return UsageGroup(key_name=row.group[0], **figures)


def _order(group: UsageGroup) -> tuple[object, ...]:
    return (
        group.chat_model or "",
        group.version or 0,
        group.day or dt.date.min,
        group.key_name is not None,
        group.key_name or "",
    )


async def usage_report(
    db: AsyncSession,
    project_id: uuid.UUID,
    chat_model: str | None,
    start: str | None,
    end: str | None,
    group_by: GroupBy,
) -> UsageReport:
    """Runs, errors, tokens and cost of the project's chat models (or of ``chat_model``)
    in the window, per group and in total."""
    window = usage_window(start, end, utcnow())
    chat_model_id = None
    if chat_model is not None:
        found = await ChatModelRepository(db).get_by_name(project_id, chat_model)
        if found is None:
            raise ChatModelNotFound(f"No chat model named '{chat_model}'.", field="chat_model")
        chat_model_id = found.id
    rows = await UsageRepository(db).usage(
        project_id, chat_model_id, window.start, window.end, group_by
    )
    groups = sorted((_group(row, group_by) for row in rows), key=_order)
    return UsageReport(
        chat_model=chat_model,
        from_=window.start,
        to=window.end,
        group_by=group_by,
        data=groups,
        total=_figures(rows),
    )
