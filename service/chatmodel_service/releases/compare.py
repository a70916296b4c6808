"""What an admin looks at before and after publishing: per-version figures and a diff
between two versions. Never commits."""

from __future__ import annotations

import difflib
import uuid
from collections.abc import Iterator

from pydantic import JsonValue
from sqlalchemy.ext.asyncio import AsyncSession

from chatmodel_service.chat_models.repository import ChatModelRepository
from chatmodel_service.chat_models.service import require_chat_model
from chatmodel_service.errors import VersionNotFound
from chatmodel_service.feedback.service import version_figures as feedback_figures
from chatmodel_service.models import ChatModel, ChatModelVersion
from chatmodel_service.releases.repository import ReleaseRepository
from chatmodel_service.releases.schemas import (
    FieldChange,
    LatencyStats,
    VersionDiff,
    VersionStats,
)
from chatmodel_service.sessions.schemas import total_tokens

# What a diff compares besides the system prompt, in the order changes are reported;
# ``params`` is compared key by key.
COMPARED_FIELDS = ("model", "api_base", "params", "functions", "tools", "variables", "memo")


async def _require_version(
    repo: ChatModelRepository, chat_model: ChatModel, number: int, field: str
) -> ChatModelVersion:
    version = await repo.get_version(chat_model.id, number)
    if version is None:
        raise VersionNotFound(
            f"Chat model '{chat_model.name}' has no version {number}.", field=field
        )
    return version


async def version_stats(
    db: AsyncSession, project_id: uuid.UUID, name: str, number: int
) -> VersionStats:
    repo = ChatModelRepository(db)
    chat_model = await require_chat_model(repo, project_id, name)
    version = await _require_version(repo, chat_model, number, field="version")
    figures = await ReleaseRepository(db).version_figures(version.id)
    return VersionStats(
        version=version.number,
        sessions=figures.sessions,
        runs=figures.runs,
        errors=figures.failed_runs,
        prompt_tokens=figures.prompt_tokens,
        completion_tokens=figures.completion_tokens,
        total_tokens=total_tokens(figures.prompt_tokens, figures.completion_tokens),
        cost=figures.cost,
        latency_ms=LatencyStats(mean=figures.latency_mean, p95=figures.latency_p95),
        feedback=await feedback_figures(db, version.id),
    )


def _setting(version: ChatModelVersion, field: str) -> JsonValue:
    value: JsonValue = getattr(version, field)
    return value


def _changes(old: ChatModelVersion, new: ChatModelVersion) -> Iterator[FieldChange]:
    for field in COMPARED_FIELDS:
        if field == "params":
            for key in sorted(old.params.keys() | new.params.keys()):
                before, after = old.params.get(key), new.params.get(key)
                if before != after:
                    yield FieldChange(field=f"params.{key}", from_=before, to=after)
        elif _setting(old, field) != _setting(new, field):
            yield FieldChange(field=field, from_=_setting(old, field), to=_setting(new, field))


def version_diff_of(old: ChatModelVersion, new: ChatModelVersion) -> VersionDiff:
    prompt_diff = difflib.unified_diff(
        old.system_prompt.splitlines(),
        new.system_prompt.splitlines(),
        fromfile=f"v{old.number}",
        tofile=f"v{new.number}",
        lineterm="",
    )
    return VersionDiff(
        from_=old.number,
        to=new.number,
        system_prompt_diff=list(prompt_diff),
        changes=list(_changes(old, new)),
    )


async def version_diff(
    db: AsyncSession, project_id: uuid.UUID, name: str, from_number: int, to_number: int
) -> VersionDiff:
    """What changes going from version ``from_number`` to ``to_number``."""
    repo = ChatModelRepository(db)
    chat_model = await require_chat_model(repo, project_id, name)
    old = await _require_version(repo, chat_model, from_number, field="from")
    new = await _require_version(repo, chat_model, to_number, field="to")
    return version_diff_of(old, new)
