"""Where promptmodel's backend calls land: its chat models are ours, its sessions are our
sessions, and the replies its SDK gets from its own LiteLLM are our runs.

* ``versions_with_logs``: without a session, the versions "deploy" may give a new session,
  as the SDK picks among them: one published version (``is_published``), or, for a split,
  every side unpublished with its share as ``ratio`` (the SDK draws by ratio, as our
  sticky hash spreads random session uuids). With a session, its pinned version only
  (the SDK takes the first) and its messages.
* ``make_session``: the session on the version the SDK picked (known by its uuid).
* ``store_chat_log``: messages are added as ``POST /v1/sessions/{uuid}/messages`` adds
  them; an item with ``api_response`` is a client-side run (``runs.record_client_run``):
  the run record with the model, usage and latency the response carries, and the reply.
* Scores: ``scores``.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from chatmodel_service.chat_models.repository import ChatModelRepository
from chatmodel_service.chat_models.schemas import VersionSelector
from chatmodel_service.chat_models.service import (
    deployed_version,
    get_config,
    require_chat_model,
    resolve_version,
)
from chatmodel_service.errors import Conflict, InvalidInput, SessionNotFound, VersionNotFound
from chatmodel_service.llm.types import LLMFailure, LLMOutcome, LLMResult, TokenCounter
from chatmodel_service.models import ChatModel, ChatModelVersion
from chatmodel_service.observability.metrics import record_run
from chatmodel_service.promptmodel_compat.repository import PromptmodelRepository
from chatmodel_service.promptmodel_compat.schemas import (
    ChatLogItem,
    ChatLogOut,
    ChatLogStored,
    ChatModelVersionOut,
    SessionMade,
    VersionsWithLogs,
)
from chatmodel_service.releases.assignment import assignment_key
from chatmodel_service.runs import record_client_run
from chatmodel_service.sessions.repository import LoadedSession, SessionRepository
from chatmodel_service.sessions.schemas import MessageIn, MessagesAdd, SessionCreate
from chatmodel_service.sessions.service import add_messages, create_session, require_session

MAX_ERROR_LOG = 4000


# -- reading what the SDK sends --------------------------------------------------------


def optional_uuid(value: str | None, field: str) -> uuid.UUID | None:
    """A query parameter the SDK sends as an empty string when its value is None."""
    if value is None or value == "":
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidInput(f"'{value}' is not a uuid.", field=field) from None


def required_uuid(value: str | None, field: str) -> uuid.UUID:
    found = optional_uuid(value, field)
    if found is None:
        raise InvalidInput(f"{field} is required.", field=field)
    return found


def version_selector(value: str | None) -> VersionSelector:
    """``deploy`` (also when empty), ``latest`` or a version number."""
    if value in (None, "", "deploy"):
        return "deploy"
    if value == "latest":
        return "latest"
    assert value is not None
    if value.isdigit() and int(value) >= 1:
        return int(value)
    raise InvalidInput(
        f"version must be 'deploy', 'latest' or a version number, not '{value}'.",
        field="version",
    )


# -- configs ---------------------------------------------------------------------------


def _version_out(
    version: ChatModelVersion, *, published: bool, ratio: float | None, system_prompt: str
) -> ChatModelVersionOut:
    return ChatModelVersionOut(
        uuid=version.id,
        version=version.number,
        model=version.model,
        system_prompt=system_prompt,
        is_published=published,
        ratio=ratio,
    )


async def _deploy_choices(
    repo: ChatModelRepository, chat_model: ChatModel
) -> list[ChatModelVersionOut]:
    """The current release as the SDK draws from it."""
    release, _ = await deployed_version(repo, chat_model)
    if len(release.versions) == 1:
        (version, _weight), *_ = release.versions
        return [
            _version_out(version, published=True, ratio=1.0, system_prompt=version.system_prompt)
        ]
    return [
        _version_out(
            version, published=False, ratio=weight / 100, system_prompt=version.system_prompt
        )
        for version, weight in release.versions
    ]


async def versions_with_logs(
    db: AsyncSession,
    project_id: uuid.UUID,
    name: str,
    session_uuid: uuid.UUID | None,
    selector: VersionSelector,
) -> VersionsWithLogs:
    repo = ChatModelRepository(db)
    chat_model = await require_chat_model(repo, project_id, name)
    if session_uuid is None:
        if selector == "deploy":
            return VersionsWithLogs(chat_model_versions=await _deploy_choices(repo, chat_model))
        version = await resolve_version(repo, chat_model, selector)
        choice = _version_out(
            version, published=False, ratio=None, system_prompt=version.system_prompt
        )
        return VersionsWithLogs(chat_model_versions=[choice])
    try:
        read = await get_config(db, project_id, name, selector, session_uuid)
    except SessionNotFound:
        # A session uuid the SDK made up and never announced: what "deploy" would give it.
        version = await resolve_version(
            repo, chat_model, "deploy", assignment_key(session_uuid, {})
        )
        choice = _version_out(
            version, published=True, ratio=1.0, system_prompt=version.system_prompt
        )
        return VersionsWithLogs(chat_model_versions=[choice])
    config = read.config
    choice = ChatModelVersionOut(
        uuid=config.version_uuid,
        version=config.version,
        model=config.model,
        system_prompt=config.system_prompt,
        is_published=True,
        ratio=1.0,
    )
    logs = [ChatLogOut.model_validate(m) for m in config.message_logs if m.get("role") != "system"]
    return VersionsWithLogs(chat_model_versions=[choice], chat_logs=logs)


# -- sessions --------------------------------------------------------------------------


async def make_session(
    db: AsyncSession, project_id: uuid.UUID, session_uuid: uuid.UUID, version_uuid: uuid.UUID
) -> SessionMade:
    """The session pinned to the version the SDK chose (a re-made uuid is returned)."""
    found = await PromptmodelRepository(db).version_in_project(project_id, version_uuid)
    if found is None:
        raise VersionNotFound(f"No version {version_uuid}.", field="version_uuid")
    chat_model, version = found
    session, created = await create_session(
        db,
        project_id,
        SessionCreate(
            chat_model=chat_model.name, session_uuid=session_uuid, version=version.number
        ),
    )
    return SessionMade(
        session_uuid=session.uuid, version_uuid=session.version_uuid, created=created
    )


# -- chat logs -------------------------------------------------------------------------


def _message_in(item: ChatLogItem, index: int) -> MessageIn:
    """A logged message as ours; fields LiteLLM adds (``provider_specific_fields``...)
    are dropped, a tool call keeps ``id``, ``type`` and ``function``."""
    message = item.message
    tool_calls = None
    if message.tool_calls:
        tool_calls = [_tool_call(call) for call in message.tool_calls]
    fields: dict[str, Any] = {
        "role": message.role,
        "content": message.content,
        "name": message.name,
        "function_call": _function_call(message.function_call),
        "tool_calls": tool_calls,
        "tool_call_id": message.tool_call_id,
        "uuid": item.uuid,
        "metadata": item.metadata,
    }
    try:
        return MessageIn.model_validate(fields)
    except ValidationError as exc:
        problem = exc.errors()[0]
        raise InvalidInput(
            f"Message {index} cannot be stored: {problem['msg']}.", field=f"body.{index}.message"
        ) from None


def _function_call(call: dict[str, Any] | None) -> dict[str, str] | None:
    if not call:
        return None
    return {"name": str(call.get("name") or ""), "arguments": str(call.get("arguments") or "")}


def _tool_call(call: dict[str, Any]) -> dict[str, Any]:
    function = _function_call(call.get("function")) or {"name": "", "arguments": ""}
    return {"id": str(call.get("id") or ""), "type": "function", "function": function}


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def client_outcome(item: ChatLogItem, default_model: str) -> LLMOutcome:
    """What the SDK's own model call did, from the ``api_response`` and ``metadata`` it
    logged (latency: the response's ``_response_ms``/``response_ms`` if it carries one)."""
    response = item.api_response or {}
    metadata = item.metadata or {}
    named = response.get("model")
    model = named if isinstance(named, str) and named else default_model
    raw_latency = response.get("_response_ms", response.get("response_ms"))
    latency_ms = round(raw_latency) if isinstance(raw_latency, int | float) else 0
    if metadata.get("error"):
        error_log = str(metadata.get("error_log") or "The client's model call failed.")
        return LLMFailure(
            model=model,
            error_type="client_error",
            error_log=error_log[:MAX_ERROR_LOG],
            latency_ms=latency_ms,
            api_response=response or None,
        )
    # Read as far as the shape makes sense: another SDK wrote it.
    choices = response.get("choices")
    first = choices[0] if isinstance(choices, list) and choices else None
    choice: dict[str, Any] = first if isinstance(first, dict) else {}
    raw_usage = response.get("usage")
    usage: dict[str, Any] = raw_usage if isinstance(raw_usage, dict) else {}
    message = item.message
    return LLMResult(
        model=model,
        content=message.content,
        function_call=_function_call(message.function_call),
        tool_calls=[_tool_call(c) for c in message.tool_calls] if message.tool_calls else None,
        finish_reason=str(choice["finish_reason"]) if choice.get("finish_reason") else None,
        prompt_tokens=_int(usage.get("prompt_tokens")),
        completion_tokens=_int(usage.get("completion_tokens")),
        cost=None,
        latency_ms=latency_ms,
        api_response=response,
    )


async def store_chat_log(
    db: AsyncSession,
    project_id: uuid.UUID,
    session_uuid: uuid.UUID,
    items: list[ChatLogItem],
    *,
    key_name: str | None,
    count_tokens: TokenCounter,
) -> ChatLogStored:
    """Store the items in order, all or none: runs of messages through the session's own
    ``add_messages``, each reply (an item with ``api_response``) as a client-side run. A
    reply logged again (same uuid) is not stored twice."""
    if not items:
        raise InvalidInput("The chat log is empty.", field="body")
    sessions = SessionRepository(db)
    loaded = await require_session(sessions, project_id, session_uuid)
    message_uuids: list[uuid.UUID] = []
    run_uuids: list[uuid.UUID] = []
    pending: list[MessageIn] = []

    async def flush() -> None:
        if pending:
            added = await add_messages(
                db, project_id, session_uuid, MessagesAdd(messages=pending), count_tokens
            )
            message_uuids.extend(m.uuid for m in added.data)
            pending.clear()

    for index, item in enumerate(items):
        if item.api_response is None:
            pending.append(_message_in(item, index))
            continue
        await flush()
        run_uuid = await _store_reply(db, project_id, loaded, item, index, key_name, count_tokens)
        if run_uuid is not None:
            run_uuids.append(run_uuid)
        if item.uuid is not None:
            message_uuids.append(item.uuid)
    await flush()
    return ChatLogStored(
        session_uuid=session_uuid, message_uuids=message_uuids, run_uuids=run_uuids
    )


async def _store_reply(
    db: AsyncSession,
    project_id: uuid.UUID,
    loaded: LoadedSession,
    item: ChatLogItem,
    index: int,
    key_name: str | None,
    count_tokens: TokenCounter,
) -> uuid.UUID | None:
    sessions = SessionRepository(db)
    await sessions.lock(loaded.session.id)
    if item.uuid is not None:
        previous = (await sessions.messages_by_uuid(project_id, [item.uuid])).get(item.uuid)
        if previous is not None:
            if previous.session_id != loaded.session.id:  # unique per project, as in add
                raise Conflict(
                    "This message uuid belongs to another session.", field=f"body.{index}.uuid"
                )
            return None  # logged before
    outcome = client_outcome(item, loaded.version.model)
    if isinstance(outcome, LLMResult):
        _message_in(item, 0)  # the reply must be a message we can store
    run_uuid = await record_client_run(
        db, loaded, outcome, reply_uuid=item.uuid, key_name=key_name, count_tokens=count_tokens
    )
    record_run(loaded.chat_model.name, loaded.version.number, outcome)
    return run_uuid
