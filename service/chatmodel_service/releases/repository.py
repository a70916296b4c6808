"""All SQL for releases (each label's publish history) and the per-version figures."""

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
        self, chat_model_id: uuid.UUID, label: str | None, limit: int | None = None
    ) -> list[ReleaseRecord]:
        """The newest ``limit`` releases (all when None) of ``label`` (every label's when
        None), newest first, with their versions."""
        query = (
            select(ChatModelRelease)
            .where(ChatModelRelease.chat_model_id == chat_model_id)
            .order_by(ChatModelRelease.seq.desc())
        )
        if label is not None:
            query = query.where(ChatModelRelease.label == label)
        if limit is not None:
            query = query.limit(limit)
        return await self._with_versions(list((await self.session.execute(query)).scalars()))

    async def _with_versions(self, releases: list[ChatModelRelease]) -> list[ReleaseRecord]:
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

    async def current(self, chat_model_id: uuid.UUID, label: str) -> ReleaseRecord | None:
        """The label's newest release (``production``'s is what "deploy" means), or None if
        never published to."""
        recent = await self.recent(chat_model_id, label, limit=1)
        return recent[0] if recent else None

    async def current_by_label(self, chat_model_id: uuid.UUID) -> dict[str, ReleaseRecord]:
        """Every label's current release, by label name (labels never published to absent)."""
        newest = (
            select(ChatModelRelease.label, func.max(ChatModelRelease.seq).label("seq"))
            .where(ChatModelRelease.chat_model_id == chat_model_id)
            .group_by(ChatModelRelease.label)
            .subquery()
        )
        query = (
            select(ChatModelRelease)
            .join(
                newest,
                (ChatModelRelease.label == newest.c.label) & (ChatModelRelease.seq == newest.c.seq),
            )
            .where(ChatModelRelease.chat_model_id == chat_model_id)
            .order_by(ChatModelRelease.label)
        )
        releases = list((await self.session.execute(query)).scalars())
        return {record.release.label: record for record in await self._with_versions(releases)}

    async def has_label(self, chat_model_id: uuid.UUID, label: str) -> bool:
        found = await self.session.scalar(
            select(ChatModelRelease.id)
            .where(ChatModelRelease.chat_model_id == chat_model_id)
            .where(ChatModelRelease.label == label)
            .limit(1)
        )
        return found is not None

    async def add(
        self,
        chat_model_id: uuid.UUID,
        weights: list[tuple[uuid.UUID, int]],
        *,
        label: str,
        kind: str,
        published_by: str | None,
        note: str,
        key_name: str | None = None,
    ) -> ChatModelRelease:
        """Append the chat model's next release to ``label``'s history (``seq`` counts per
        chat model; the unique (chat_model, seq) constraint settles races)."""
        next_seq = await self.session.scalar(
            select(func.coalesce(func.max(ChatModelRelease.seq), 0) + 1).where(
                ChatModelRelease.chat_model_id == chat_model_id
            )
        )
        release = ChatModelRelease(
            chat_model_id=chat_model_id,
            seq=int(next_seq or 1),
            label=label,
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
