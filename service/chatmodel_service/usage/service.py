"""The usage report: resolve the window and the chat model, sum the runs per group.

``group_by`` is one grouping (``version``, ``day``, ``key``) or several joined by commas
(``version,day``: one row per version per UTC day); rows are ordered by the groupings in
the order given.

``from`` and ``to`` are ISO 8601 datetimes or dates, in UTC unless they carry an offset.
The window is ``from <= run start < to``: a date as ``from`` starts at that day's
midnight, a date as ``to`` ends after that whole day. Without ``to`` the window ends now;
without ``from`` it starts 30 days before ``to``; it spans at most 366 days.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from chatmodel_service.chat_models.repository import ChatModelRepository
from chatmodel_service.errors import ChatModelNotFound, InvalidInput
from chatmodel_service.models.base import utcnow
from chatmodel_service.sessions.schemas import total_tokens
from chatmodel_service.usage.repository import UsageRepository, UsageRow
from chatmodel_service.usage.schemas import (
    GroupBy,
    UsageFigures,
    UsageGroup,
    UsageReport,
    parse_group_by,
)

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


def _figures(rows: list[UsageRow], latency_p95: int | None) -> UsageFigures:
    costs = [row.cost for row in rows if row.cost is not None]
    runs = sum(row.runs for row in rows)
    errors = sum(row.failed_runs for row in rows)
    prompt = sum(row.prompt_tokens for row in rows)
    completion = sum(row.completion_tokens for row in rows)
    return UsageFigures(
        runs=runs,
        errors=errors,
        error_rate=errors / runs if runs else None,
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=total_tokens(prompt, completion),
        cost=sum(costs) if costs else None,
        latency_p95_ms=latency_p95,
    )


def _group(row: UsageRow, group_by: tuple[GroupBy, ...]) -> UsageGroup:
    names: dict[str, Any] = {}
    values = iter(row.group)
    for grouping in group_by:
        if grouping == "version":
            names["chat_model"] = next(values)
            names["version"] = int(next(values))
        elif grouping == "day":
            names["day"] = dt.date.fromisoformat(str(next(values)))
        else:
            names["key_name"] = next(values)
    return UsageGroup(**names, **_figures([row], row.latency_p95).model_dump())


def _order(group: UsageGroup, group_by: tuple[GroupBy, ...]) -> tuple[object, ...]:
    key: list[object] = []
    for grouping in group_by:
        if grouping == "version":
            key += [group.chat_model or "", group.version or 0]
        elif grouping == "day":
            key.append(group.day or dt.date.min)
        else:
            key += [group.key_name is not None, group.key_name or ""]
    return tuple(key)


async def usage_report(
    db: AsyncSession,
    project_id: uuid.UUID,
    chat_model: str | None,
    start: str | None,
    end: str | None,
    group_by: str,
) -> UsageReport:
    """Runs, errors, tokens, cost and latency p95 of the project's chat models (or of
    ``chat_model``) in the window, per group (``group_by``: one grouping or several
    joined by commas, already checked by the router) and in total."""
    window = usage_window(start, end, utcnow())
    chat_model_id = None
    if chat_model is not None:
        found = await ChatModelRepository(db).get_by_name(project_id, chat_model)
        if found is None:
            raise ChatModelNotFound(f"No chat model named '{chat_model}'.", field="chat_model")
        chat_model_id = found.id
    groupings = parse_group_by(group_by)
    repository = UsageRepository(db)
    rows = await repository.usage(project_id, chat_model_id, window.start, window.end, groupings)
    total_p95 = await repository.latency_p95(project_id, chat_model_id, window.start, window.end)
    groups = sorted(
        (_group(row, groupings) for row in rows), key=lambda group: _order(group, groupings)
    )
    return UsageReport(
        chat_model=chat_model,
        from_=window.start,
        to=window.end,
        group_by=",".join(groupings),
        data=groups,
        total=_figures(rows, total_p95),
    )
