"""Publishing: one version, a weighted split, or a rollback, each appended as a release.

Releases are an append-only history per label (``releases.labels``); a label's newest is
its current release, and ``production``'s is what "deploy" means. Publishing, rolling
back and the ``expected_release`` check each act on one label's history. Never commits:
the request's unit of work does. A split of versions that declare different template
variables is refused (unless asked for), and every new release reports what it means for
the variables new sessions must send (``releases.variables``). Which version of a split a
new session gets is decided in ``releases.assignment`` (pure, used by
``chat_models.service.resolve_version``).
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from chatmodel_service.chat_models.repository import ChatModelRepository
from chatmodel_service.chat_models.service import require_chat_model, resolve_version
from chatmodel_service.errors import (
    NothingToRollBack,
    StaleRelease,
    VariablesMismatch,
    VersionNotFound,
)
from chatmodel_service.models import ChatModel, ChatModelRelease, ChatModelVersion
from chatmodel_service.releases.labels import PRODUCTION
from chatmodel_service.releases.repository import ReleaseRecord, ReleaseRepository
from chatmodel_service.releases.schemas import (
    RELEASE_KINDS,
    PublishRequest,
    ReleaseKind,
    ReleaseList,
    ReleaseOut,
    RollbackRequest,
)
from chatmodel_service.releases.variables import release_warnings, split_mismatch


def _kind(value: str) -> ReleaseKind:
    if value not in RELEASE_KINDS:
        raise ValueError(f"unknown release kind {value!r}")
    return value


def release_out(
    chat_model: ChatModel,
    release: ChatModelRelease,
    chosen: list[tuple[ChatModelVersion, int]],
    previous: ReleaseRecord | None,
) -> ReleaseOut:
    """The release of ``chosen`` (version, weight) pairs that replaced ``previous``."""
    warnings = release_warnings(
        [version for version, _ in previous.versions] if previous else None,
        [version for version, _ in chosen],
        previous_release=previous.release.seq if previous else None,
    )
    return ReleaseOut(
        id=release.id,
        release=release.seq,
        chat_model=chat_model.name,
        label=release.label,
        kind=_kind(release.kind),
        versions={version.number: weight for version, weight in chosen},
        previous_versions=previous.weights if previous else {},
        published_by=release.published_by,
        key_name=release.key_name,
        note=release.note,
        created_at=release.created_at,
        warnings=warnings,
    )


def _check_expected(current: ReleaseRecord | None, expected: uuid.UUID | None, label: str) -> None:
    """Optimistic concurrency: refuse to act on a label's history the caller has not seen."""
    if expected is None or (current is not None and current.release.id == expected):
        return
    if current is None:
        raise StaleRelease(
            f"Release {expected} is not current: nothing is published to '{label}' yet.",
            field="expected_release",
        )
    raise StaleRelease(
        f"Release {expected} is not current: release {current.release.seq} "
        f"({current.release.id}) is, on '{label}'; reload the releases and retry.",
        field="expected_release",
    )


async def _split_versions(
    repo: ChatModelRepository, chat_model: ChatModel, body: PublishRequest
) -> list[tuple[ChatModelVersion, int]]:
    """The split's versions with their weights; refuses versions that declare different
    template variables unless ``allow_variable_mismatch``."""
    assert body.weights is not None
    chosen = []
    for number in sorted(body.weights):
        version = await repo.get_version(chat_model.id, number)
        if version is None:
            raise VersionNotFound(
                f"Chat model '{chat_model.name}' has no version {number}.",
                field=f"weights.{number}",
            )
        chosen.append((version, body.weights[number]))
    mismatch = split_mismatch([version for version, _ in chosen])
    if mismatch is not None and not body.allow_variable_mismatch:
        raise VariablesMismatch(
            f"{mismatch} Nothing was published: split versions that declare the same "
            "variables, or send allow_variable_mismatch: true if every client copes.",
            field="weights",
        )
    return chosen


async def publish(
    db: AsyncSession,
    project_id: uuid.UUID,
    name: str,
    body: PublishRequest,
    key_name: str | None = None,
) -> ReleaseOut:
    """Point ``body.label`` at one version (kind "publish") or split it by weight ("split")."""
    chat_models = ChatModelRepository(db)
    releases = ReleaseRepository(db)
    chat_model = await require_chat_model(chat_models, project_id, name)
    current = await releases.current(chat_model.id, body.label)
    _check_expected(current, body.expected_release, body.label)
    if body.weights is not None:
        chosen = await _split_versions(chat_models, chat_model, body)
        kind = "split"
    else:
        assert body.version is not None  # the schema requires exactly one of the two
        chosen = [(await resolve_version(chat_models, chat_model, body.version), 100)]
        kind = "publish"
    release = await releases.add(
        chat_model.id,
        [(version.id, weight) for version, weight in chosen],
        label=body.label,
        kind=kind,
        published_by=body.by or key_name,
        note=body.note,
        key_name=key_name,
    )
    return release_out(chat_model, release, chosen, current)


async def roll_back(
    db: AsyncSession,
    project_id: uuid.UUID,
    name: str,
    body: RollbackRequest,
    key_name: str | None = None,
) -> ReleaseOut:
    """Republish the versions and weights of the label's release before its current one, as
    a new release of kind "rollback" to that label (rolling back twice returns to where you
    started; other labels are untouched)."""
    chat_models = ChatModelRepository(db)
    releases = ReleaseRepository(db)
    chat_model = await require_chat_model(chat_models, project_id, name)
    recent = await releases.recent(chat_model.id, body.label, limit=2)
    _check_expected(recent[0] if recent else None, body.expected_release, body.label)
    if len(recent) < 2:
        have = "no release" if not recent else "only one release"
        raise NothingToRollBack(
            f"Chat model '{name}' has {have} on '{body.label}'; there is nothing to roll back to."
        )
    current, target = recent
    release = await releases.add(
        chat_model.id,
        [(version.id, weight) for version, weight in target.versions],
        label=body.label,
        kind="rollback",
        published_by=body.by or key_name,
        key_name=key_name,
        note=body.note or f"Rolled back to release {target.release.seq}.",
    )
    return release_out(chat_model, release, target.versions, current)


async def list_releases(
    db: AsyncSession, project_id: uuid.UUID, name: str, label: str | None = PRODUCTION
) -> ReleaseList:
    """One label's history (every label's, interleaved by release number, when None),
    newest first. A label never published to has none."""
    chat_model = await require_chat_model(ChatModelRepository(db), project_id, name)
    history = await ReleaseRepository(db).recent(chat_model.id, label)
    # Newest first: each release replaced the next one of its label in the list (the
    # label's oldest, none).
    replaced: list[ReleaseRecord | None] = []
    before: dict[str, ReleaseRecord] = {}
    for record in reversed(history):
        replaced.append(before.get(record.release.label))
        before[record.release.label] = record
    replaced.reverse()
    return ReleaseList(
        data=[
            release_out(chat_model, record.release, record.versions, before)
            for record, before in zip(history, replaced, strict=True)
        ]
    )
