"""Chat model, version and publishing logic. Never commits: the caller's unit of work does."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from chatmodel_service.chat_models.repository import ChatModelRepository
from chatmodel_service.chat_models.schemas import (
    ChatModelConfig,
    ChatModelCreate,
    ChatModelList,
    ChatModelOut,
    ChatModelUpdate,
    VersionCreate,
    VersionList,
    VersionOut,
    VersionSelector,
    parse_selector,
)
from chatmodel_service.chat_models.templates import check_prompt, render_system_prompt
from chatmodel_service.db import Database
from chatmodel_service.errors import (
    AlreadyExists,
    ChatModelNotFound,
    InvalidInput,
    NothingPublished,
    SessionNotFound,
    VersionNotFound,
)
from chatmodel_service.http_cache import etag_for
from chatmodel_service.llm.types import ModelChecker, ModelProblem
from chatmodel_service.models import ChatModel, ChatModelVersion
from chatmodel_service.releases.assignment import pick_version
from chatmodel_service.releases.labels import (
    BUILT_IN_LABELS,
    PRODUCTION,
    canonical_label,
    split_model,
)
from chatmodel_service.releases.repository import ReleaseRecord, ReleaseRepository
from chatmodel_service.sessions.messages import message_to_openai
from chatmodel_service.sessions.repository import SessionRepository


def version_out(chat_model: ChatModel, version: ChatModelVersion) -> VersionOut:
    return VersionOut(
        uuid=version.id,
        chat_model=chat_model.name,
        number=version.number,
        system_prompt=version.system_prompt,
        model=version.model,
        api_base=version.api_base,
        params=version.params,
        functions=version.functions,
        tools=version.tools,
        memo=version.memo,
        created_at=version.created_at,
        variables=version.variables,
        context_strategy=version.context_strategy,
        context_last_n=version.context_last_n,
        context_window=version.context_window,
        summary_model=version.summary_model,
        summary_prompt=version.summary_prompt,
    )


async def _chat_model_out(repo: ChatModelRepository, chat_model: ChatModel) -> ChatModelOut:
    latest = await repo.latest_version(chat_model.id)
    current = await ReleaseRepository(repo.session).current_by_label(chat_model.id)
    empty: dict[str, dict[int, int]] = {label: {} for label in BUILT_IN_LABELS}
    labels = empty | {label: record.weights for label, record in current.items()}
    return ChatModelOut(
        name=chat_model.name,
        description=chat_model.description,
        archived=chat_model.archived,
        created_at=chat_model.created_at,
        updated_at=chat_model.updated_at,
        retention_days=chat_model.retention_days,
        latest_version=latest.number if latest else None,
        published_versions=labels[PRODUCTION],
        labels=labels,
    )


async def require_chat_model(
    repo: ChatModelRepository, project_id: uuid.UUID, name: str
) -> ChatModel:
    chat_model = await repo.get_by_name(project_id, name)
    if chat_model is None:
        raise ChatModelNotFound(f"No chat model named '{name}'.", field="chat_model")
    return chat_model


async def deployed_version(
    repo: ChatModelRepository,
    chat_model: ChatModel,
    assignment_key: str | None = None,
    label: str = PRODUCTION,
) -> tuple[ReleaseRecord, ChatModelVersion]:
    """The label's current release and the version it gives ``assignment_key`` (a split
    picks by a stable hash of the key; without a key, the version with the largest share).

    A label never published to: 422 nothing_published for ``production`` and ``staging``
    (which always exist), 404 version_not_found for any other name (no such label)."""
    label = canonical_label(label)
    release = await ReleaseRepository(repo.session).current(chat_model.id, label)
    if release is None or not release.versions:
        if label not in BUILT_IN_LABELS:
            raise VersionNotFound(
                f"Chat model '{chat_model.name}' has no label '{label}' (nothing was ever "
                "published to it); ask for 'production', 'staging', 'latest' or a version "
                "number.",
                field="version",
            )
        what = "published version" if label == PRODUCTION else f"version published to '{label}'"
        raise NothingPublished(
            f"Chat model '{chat_model.name}' has no {what}; publish one or ask "
            "for 'latest' or a version number.",
            field="version",
        )
    by_number = {version.number: version for version, _ in release.versions}
    if assignment_key is None:
        return release, max(release.versions, key=lambda pair: pair[1])[0]
    return release, by_number[pick_version(release.weights, assignment_key)]


async def resolve_version(
    repo: ChatModelRepository,
    chat_model: ChatModel,
    selector: VersionSelector,
    assignment_key: str | None = None,
) -> ChatModelVersion:
    """Turn "latest", a number or a label ("deploy" is "production") into a version of
    ``chat_model``.

    ``assignment_key`` (a session's user id or uuid) decides which side of a label's split
    that session gets; see ``releases.assignment``.
    """
    if selector == "latest":
        version = await repo.latest_version(chat_model.id)
        if version is None:
            raise VersionNotFound(
                f"Chat model '{chat_model.name}' has no versions yet.", field="version"
            )
        return version
    if isinstance(selector, str):
        return (await deployed_version(repo, chat_model, assignment_key, selector))[1]
    version = await repo.get_version(chat_model.id, selector)
    if version is None:
        raise VersionNotFound(
            f"Chat model '{chat_model.name}' has no version {selector}.", field="version"
        )
    return version


def model_selector(model: str) -> tuple[str, VersionSelector | None]:
    """A ``model`` of the OpenAI-compatible and Responses routes: ``name`` (selector None:
    the caller's default, "production") or ``name@selector`` (``support_bot@staging``,
    ``@3``, ``@latest``; see ``releases.labels``). 422 naming ``model`` when the part
    after ``@`` is not a selector."""
    name, written = split_model(model)
    if written is None:
        return model, None
    selector = parse_selector(written)
    if selector is None:
        raise InvalidInput(
            f"'{written}' after '@' in model '{model}' is not a version: write "
            "'name@<label>' (production, staging or an admin-defined label), "
            "'name@latest' or 'name@<version number>'.",
            field="model",
        )
    return name, selector


async def create_chat_model(
    db: AsyncSession, project_id: uuid.UUID, body: ChatModelCreate
) -> ChatModelOut:
    repo = ChatModelRepository(db)
    if await repo.get_by_name(project_id, body.name) is not None:
        raise AlreadyExists(f"A chat model named '{body.name}' already exists.", field="name")
    chat_model = await repo.add(
        ChatModel(
            project_id=project_id,
            name=body.name,
            description=body.description,
            retention_days=body.retention_days,
        )
    )
    return await _chat_model_out(repo, chat_model)


async def list_chat_models(db: AsyncSession, project_id: uuid.UUID) -> ChatModelList:
    repo = ChatModelRepository(db)
    return ChatModelList(
        data=[await _chat_model_out(repo, cm) for cm in await repo.list_for_project(project_id)]
    )


async def get_chat_model(db: AsyncSession, project_id: uuid.UUID, name: str) -> ChatModelOut:
    repo = ChatModelRepository(db)
    return await _chat_model_out(repo, await require_chat_model(repo, project_id, name))


async def update_chat_model(
    db: AsyncSession, project_id: uuid.UUID, name: str, body: ChatModelUpdate
) -> ChatModelOut:
    """Set the chat model's own settings the body names: its description and its retention
    (``retention_days: null`` keeps sessions forever). Its prompts change by adding
    versions, never here."""
    repo = ChatModelRepository(db)
    chat_model = await require_chat_model(repo, project_id, name)
    await repo.update(chat_model, body.model_dump(exclude_unset=True))
    return await get_chat_model(db, project_id, name)


def check_version_model(body: VersionCreate, check_model: ModelChecker) -> None:
    """Refuse a model LiteLLM cannot route, or parameters it does not support for it; the
    same for each fallback model, which is called with the same api_base and parameters."""
    params = list(body.params.as_call_params())
    problems = list(check_model(body.model, body.api_base, params))
    for index, fallback in enumerate(body.params.fallbacks or []):
        field = f"params.fallbacks.{index}"
        if fallback == body.model:
            problems.append(
                ModelProblem(
                    field,
                    f"'{fallback}' is the version's own model; use params.num_retries to try "
                    "it again.",
                )
            )
            continue
        problems += [
            ModelProblem(field if p.field == "model" else p.field, p.detail)
            for p in check_model(fallback, body.api_base, params)
        ]
    if body.summary_model is not None:
        problems += [
            ModelProblem("summary_model" if p.field == "model" else p.field, p.detail)
            for p in check_model(body.summary_model, body.api_base, ["max_tokens"])
        ]
    if problems:
        first, *rest = problems
        also = "".join(f" Also {p.field}: {p.detail}" for p in rest)
        raise InvalidInput(first.detail + also, field=first.field)


@dataclass(frozen=True)
class CheckedVersion:
    """A new version's call settings as they are stored: what a draft's test run calls."""

    system_prompt: str
    model: str
    api_base: str | None
    params: dict[str, Any]
    functions: list[dict[str, Any]] | None
    tools: list[dict[str, Any]] | None
    variables: list[str] | None


def checked_version(body: VersionCreate, check_model: ModelChecker) -> CheckedVersion:
    """Check a new version (its model and parameters through ``check_model``, its prompt's
    template variables) and give its call settings as stored; 422 naming the field."""
    check_version_model(body, check_model)
    return CheckedVersion(
        system_prompt=body.system_prompt,
        model=body.model,
        api_base=body.api_base,
        params=body.params.model_dump(exclude_none=True),
        functions=[f.model_dump(exclude_none=True) for f in body.functions]
        if body.functions
        else None,
        tools=[t.model_dump(exclude_none=True) for t in body.tools] if body.tools else None,
        variables=check_prompt(body.system_prompt, body.variables),
    )


async def create_version(
    db: AsyncSession,
    project_id: uuid.UUID,
    name: str,
    body: VersionCreate,
    check_model: ModelChecker,
) -> VersionOut:
    """Validate and insert the next version: the model and its parameters (through
    ``check_model``, the gateway's offline check) and the prompt's template variables."""
    repo = ChatModelRepository(db)
    chat_model = await require_chat_model(repo, project_id, name)
    checked = checked_version(body, check_model)
    version = await repo.add_version(
        chat_model.id,
        **asdict(checked),
        memo=body.memo,
        context_strategy=body.context_strategy,
        context_last_n=body.context_last_n,
        context_window=body.context_window,
        summary_model=body.summary_model,
        summary_prompt=body.summary_prompt,
    )
    if body.publish:
        await ReleaseRepository(db).add(
            chat_model.id,
            [(version.id, 100)],
            label=PRODUCTION,
            kind="publish",
            published_by=None,
            note="published on creation",
        )
    return version_out(chat_model, version)


async def list_versions(db: AsyncSession, project_id: uuid.UUID, name: str) -> VersionList:
    repo = ChatModelRepository(db)
    chat_model = await require_chat_model(repo, project_id, name)
    return VersionList(
        data=[version_out(chat_model, v) for v in await repo.list_versions(chat_model.id)]
    )


async def get_version(
    db: AsyncSession, project_id: uuid.UUID, name: str, number: int
) -> VersionOut:
    repo = ChatModelRepository(db)
    chat_model = await require_chat_model(repo, project_id, name)
    return version_out(chat_model, await resolve_version(repo, chat_model, number))


def version_detail(chat_model: ChatModel, version: ChatModelVersion) -> dict[str, object]:
    return {
        "name": chat_model.name,
        "model": version.model,
        "uuid": str(version.id),
        "version": version.number,
        "params": version.params,
        "api_base": version.api_base,
        "functions": version.functions,
        "tools": version.tools,
        "memo": version.memo,
        "variables": version.variables,
        "context_strategy": version.context_strategy,
        "context_last_n": version.context_last_n,
        "context_window": version.context_window,
        "summary_model": version.summary_model,
        "summary_prompt": version.summary_prompt,
    }


@dataclass(frozen=True)
class ConfigRead:
    """A config and its ETag: None for a session's config (its messages keep changing)."""

    config: ChatModelConfig
    etag: str | None


async def get_config(
    db: AsyncSession,
    project_id: uuid.UUID,
    name: str,
    selector: VersionSelector,
    session_uuid: uuid.UUID | None,
) -> ConfigRead:
    """Seed 004's ChatModelConfig; with a session, its pinned version and its messages."""
    repo = ChatModelRepository(db)
    chat_model = await require_chat_model(repo, project_id, name)
    message_logs: list[dict[str, object]] = []
    etag: str | None = None
    system_prompt: str | None = None
    if session_uuid is not None:
        sessions = SessionRepository(db)
        loaded = await sessions.get_with_version(project_id, session_uuid)
        if loaded is None or loaded.chat_model.id != chat_model.id:
            raise SessionNotFound(
                f"No session {session_uuid} for chat model '{name}'.", field="session_uuid"
            )
        version = loaded.version
        stored = await sessions.all_messages(loaded.session.id)
        message_logs = [message_to_openai(m) for m in stored]
        system_prompt = render_system_prompt(
            version.system_prompt, version.variables, loaded.session.variables
        )
    elif isinstance(selector, str) and selector != "latest":
        release, version = await deployed_version(repo, chat_model, label=selector)
        etag = etag_for(release.release.id, version.id)
    else:
        version = await resolve_version(repo, chat_model, selector)
        etag = etag_for(version.id)
    config = ChatModelConfig(
        name=chat_model.name,
        # With a session: rendered with its variables; without: the version's template.
        system_prompt=version.system_prompt if system_prompt is None else system_prompt,
        model=version.model,
        version=version.number,
        version_uuid=version.id,
        version_detail=version_detail(chat_model, version),
        message_logs=message_logs,
        session_uuid=session_uuid,
    )
    return ConfigRead(config, etag)


DEMO_CHAT_MODEL = "simple_assistant"


async def seed_demo(db: AsyncSession, check_model: ModelChecker) -> bool:
    """On an empty database, create a published demo chat model on the offline model."""
    from chatmodel_service.llm import OFFLINE_MODEL
    from chatmodel_service.models import DEFAULT_PROJECT_ID

    repo = ChatModelRepository(db)
    if await repo.count_all() > 0:
        return False
    await create_chat_model(
        db,
        DEFAULT_PROJECT_ID,
        ChatModelCreate(
            name=DEMO_CHAT_MODEL,
            description="Demo on the built-in offline model: echoes, and calls offered functions.",
        ),
    )
    await create_version(
        db,
        DEFAULT_PROJECT_ID,
        DEMO_CHAT_MODEL,
        VersionCreate(
            system_prompt="You are a helpful assistant.",
            model=OFFLINE_MODEL,
            memo="Created by the server on an empty database.",
            publish=True,
        ),
        check_model,
    )
    return True


async def seed_demo_once(database: Database, check_model: ModelChecker) -> bool:
    """``seed_demo`` in a transaction of its own, for servers that start on one database at
    once (``serve --workers N``, several machines): one of them seeds it, and the others,
    whose insert of the same name fails, find it seeded."""
    try:
        async with database.transaction() as db:
            return await seed_demo(db, check_model)
    except (AlreadyExists, IntegrityError):
        async with database.transaction(write=False) as db:
            if await ChatModelRepository(db).count_all() == 0:
                raise
        return False
