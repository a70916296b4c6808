"""All SQL for releases (the publish history) and the per-version figures."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from chatmodel_service.models import (
    ChatModelRelease,
    ChatModelVersion,
    ChatRun,
    ChatSession,
    ReleaseVersion,
)
from chatmodel_service.usage.repository import RunTotals, latency_percentile


@dataclass(frozen=True)
class ReleaseRecord:
    """A release with its (version, weight) pairs in version-number order."""

    release: ChatModelRelease
    versions: list[tuple[ChatModelVersion, int]]

    @property
    def weights(self) -> dict[int, int]:
        return {version.number: weight for version, weight in self.versions}


@dataclass(frozen=True)
class VersionFigures(RunTotals):
    """A version's run totals, the sessions pinned to it and its runs' latency."""

    sessions: int
    latency_mean: float | None
    latency_p95: int | None


class ReleaseRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def recent(
        self, chat_model_id: uuid.UUID, limit: int | None = None
    ) -> list[ReleaseRecord]:
        """The newest ``limit`` releases (all when None), newest first, with their versions."""
        query = (
            select(ChatModelRelease)
            .where(ChatModelRelease.chat_model_id == chat_model_id)
            .order_by(ChatModelRelease.seq.desc())
        )
        if limit is not None:
            query = query.limit(limit)
        releases = list((await self.session.execute(query)).scalars())
        if not releases:
            return []
        rows = await self.session.execute(
            select(ReleaseVersion.release_id, ChatModelVersion, ReleaseVersion.weight)
            .join(ChatModelVersion, ChatModelVersion.id == ReleaseVersion.version_id)
            .where(ReleaseVersion.release_id.in_([r.id for r in releases]))
            .order_by(ChatModelVersion.number)
        )
        versions: dict[uuid.UUID, list[tuple[ChatModelVersion, int]]] = {}
        for release_id, version, weight in rows:
            versions.setdefault(release_id, []).append((version, int(weight)))
        return [ReleaseRecord(r, versions.get(r.id, [])) for r in releases]

    async def current(self, chat_model_id: uuid.UUID) -> ReleaseRecord | None:
        """The newest release (what "deploy" means), or None if never published."""
        recent = await self.recent(chat_model_id, limit=1)
        return recent[0] if recent else None

    async def add(
        self,
        chat_model_id: uuid.UUID,
        weights: list[tuple[uuid.UUID, int]],
        *,
        kind: str,
        published_by: str | None,
        note: str,
        key_name: str | None = None,
    ) -> ChatModelRelease:
        """Append the next release (the unique (chat_model, seq) constraint settles races)."""
        next_seq = await self.session.scalar(
            select(func.coalesce(func.max(ChatModelRelease.seq), 0) + 1).where(
                ChatModelRelease.chat_model_id == chat_model_id
            )
        )
        release = ChatModelRelease(
            chat_model_id=chat_model_id,
            seq=int(next_seq or 1),
            kind=kind,
            published_by=published_by,
            note=note,
            key_name=key_name,
        )
        self.session.add(release)
        await self.session.flush()
        self.session.add_all(
            ReleaseVersion(release_id=release.id, version_id=version_id, weight=weight)
            for version_id, weight in weights
        )
        await self.session.flush()
        return release

    async def version_figures(self, version_id: uuid.UUID) -> VersionFigures:
        """Sessions pinned to the version and totals over its runs (three small queries)."""
        sessions = await self.session.scalar(
            select(func.count())
            .select_from(ChatSession)
            .where(ChatSession.version_id == version_id)
        )
        row = (
            await self.session.execute(
                select(*RunTotals.columns(), func.avg(ChatRun.latency_ms)).where(
                    ChatRun.version_id == version_id
                )
            )
        ).one()
        *values, latency_mean = row
        totals = RunTotals.read(values)
        runs = select(ChatRun).where(ChatRun.version_id == version_id)
        latency_p95 = await self.session.scalar(latency_percentile(95, runs))
        return VersionFigures(
            **asdict(totals),
            sessions=int(sessions or 0),
            latency_mean=float(latency_mean) if latency_mean is not None else None,
            latency_p95=int(latency_p95) if latency_p95 is not None else None,
        )
