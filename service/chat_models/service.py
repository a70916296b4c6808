"""Chat model, version and publishing logic. Never commits: the caller's unit of work does."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from chatmodel_service.chat_models.repository import ChatModelRepository
from chatmodel_service.chat_models.schemas import (
    ChatModelConfig,
    ChatModelCreate,
    ChatModelList,
    ChatModelOut,
    PublishRequest,
    ReleaseOut,
    VersionCreate,
    VersionList,
    VersionOut,
    VersionSelector,
)
from chatmodel_service.errors import (
    AlreadyExists,
    ChatModelNotFound,
    NothingPublished,
    SessionNotFound,
    VersionNotFound,
)
from chatmodel_service.models import ChatModel, ChatModelVersion
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
    )


async def _chat_model_out(repo: ChatModelRepository, chat_model: ChatModel) -> ChatModelOut:
    latest = await repo.latest_version(chat_model.id)
    release = await repo.current_release(chat_model.id)
    published = {v.number: weight for v, weight in release[1]} if release else {}
    return ChatModelOut(
        name=chat_model.name,
        description=chat_model.description,
        archived=chat_model.archived,
        created_at=chat_model.created_at,
        updated_at=chat_model.updated_at,
        latest_version=latest.number if latest else None,
        published_versions=published,
    )


async def require_chat_model(
    repo: ChatModelRepository, project_id: uuid.UUID, name: str
) -> ChatModel:
    chat_model = await repo.get_by_name(project_id, name)
    if chat_model is None:
        raise ChatModelNotFound(f"No chat model named '{name}'.", field="chat_model")
    return chat_model


async def resolve_version(
    repo: ChatModelRepository, chat_model: ChatModel, selector: VersionSelector
) -> ChatModelVersion:
    """Turn "deploy", "latest" or a number into a version of ``chat_model``."""
    if selector == "latest":
        version = await repo.latest_version(chat_model.id)
        if version is None:
            raise VersionNotFound(
                f"Chat model '{chat_model.name}' has no versions yet.", field="version"
            )
        return version
    if selector == "deploy":
        release = await repo.current_release(chat_model.id)
        if release is None or not release[1]:
            raise NothingPublished(
                f"Chat model '{chat_model.name}' has no published version; publish one or ask "
                "for 'latest' or a version number.",
                field="version",
            )
        # Single-version releases today; a weighted pick over release[1] slots in here.
        return max(release[1], key=lambda pair: pair[1])[0]
    version = await repo.get_version(chat_model.id, selector)
    if version is None:
        raise VersionNotFound(
            f"Chat model '{chat_model.name}' has no version {selector}.", field="version"
        )
    return version


async def create_chat_model(
    db: AsyncSession, project_id: uuid.UUID, body: ChatModelCreate
) -> ChatModelOut:
    repo = ChatModelRepository(db)
    if await repo.get_by_name(project_id, body.name) is not None:
        raise AlreadyExists(f"A chat model named '{body.name}' already exists.", field="name")
    chat_model = await repo.add(
        ChatModel(project_id=project_id, name=body.name, description=body.description)
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


async def create_version(
    db: AsyncSession, project_id: uuid.UUID, name: str, body: VersionCreate
) -> VersionOut:
    repo = ChatModelRepository(db)
    chat_model = await require_chat_model(repo, project_id, name)
    version = await repo.add_version(
        chat_model.id,
        system_prompt=body.system_prompt,
        model=body.model,
        api_base=body.api_base,
        params=body.params.model_dump(exclude_none=True),
        functions=[f.model_dump(exclude_none=True) for f in body.functions]
        if body.functions
        else None,
        tools=[t.model_dump(exclude_none=True) for t in body.tools] if body.tools else None,
        memo=body.memo,
    )
    if body.publish:
        await repo.add_release(
            chat_model.id, [(version.id, 100)], published_by=None, note="published on creation"
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


async def publish_version(
    db: AsyncSession, project_id: uuid.UUID, name: str, body: PublishRequest
) -> ReleaseOut:
    repo = ChatModelRepository(db)
    chat_model = await require_chat_model(repo, project_id, name)
    version = await resolve_version(repo, chat_model, body.version)
    release = await repo.add_release(
        chat_model.id, [(version.id, 100)], published_by=body.by, note=body.note
    )
    return ReleaseOut(
        chat_model=chat_model.name,
        release=release.seq,
        versions={version.number: 100},
        published_by=release.published_by,
        note=release.note,
        created_at=release.created_at,
    )


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
    }


async def get_config(
    db: AsyncSession,
    project_id: uuid.UUID,
    name: str,
    selector: VersionSelector,
    session_uuid: uuid.UUID | None,
) -> ChatModelConfig:
    """Seed 004's ChatModelConfig; with a session, its pinned version and its messages."""
    repo = ChatModelRepository(db)
    chat_model = await require_chat_model(repo, project_id, name)
    message_logs: list[dict[str, object]] = []
    if session_uuid is not None:
        sessions = SessionRepository(db)
        loaded = await sessions.get_with_version(project_id, session_uuid)
        if loaded is None or loaded.chat_model.id != chat_model.id:
            raise SessionNotFound(
                f"No session {session_uuid} for chat model '{name}'.", field="session_uuid"
            )
        version = loaded.version
        message_logs = [message_to_openai(m) for m in await sessions.all_messages(session_uuid)]
    else:
        version = await resolve_version(repo, chat_model, selector)
    return ChatModelConfig(
        name=chat_model.name,
        system_prompt=version.system_prompt,
        model=version.model,
        version=version.number,
        version_uuid=version.id,
        version_detail=version_detail(chat_model, version),
        message_logs=message_logs,
        session_uuid=session_uuid,
    )


DEMO_CHAT_MODEL = "simple_assistant"


async def seed_demo(db: AsyncSession) -> bool:
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
    )
    return True
