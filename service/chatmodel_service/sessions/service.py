"""Session and message logic. Never commits: the request's unit of work does."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from chatmodel_service.chat_models.repository import ChatModelRepository
from chatmodel_service.chat_models.service import require_chat_model, resolve_version
from chatmodel_service.chat_models.templates import check_values
from chatmodel_service.errors import Conflict, InvalidInput, SessionNotFound
from chatmodel_service.llm.types import TokenCounter
from chatmodel_service.models import ChatModel, ChatSession, SessionMessage
from chatmodel_service.releases.assignment import assignment_key
from chatmodel_service.sessions.cursor import MessageWindow
from chatmodel_service.sessions.messages import (
    link_results,
    message_out,
    message_to_openai,
    pending_after,
)
from chatmodel_service.sessions.repository import LoadedSession, SessionRepository
from chatmodel_service.sessions.schemas import (
    MessageIn,
    MessageList,
    MessagePage,
    MessagesAdd,
    SessionCreate,
    SessionOut,
)


def session_out(loaded: LoadedSession) -> SessionOut:
    return SessionOut(
        uuid=loaded.session.uuid,
        chat_model=loaded.chat_model.name,
        version=loaded.version.number,
        version_uuid=loaded.version.id,
        model=loaded.version.model,
        metadata=loaded.session.meta,
        created_at=loaded.session.created_at,
        variables=loaded.session.variables,
        parent_session_uuid=loaded.session.parent_session_id,
        parent_seq=loaded.session.parent_seq,
    )


async def require_session(
    repo: SessionRepository, project_id: uuid.UUID, session_uuid: uuid.UUID
) -> LoadedSession:
    loaded = await repo.get_with_version(project_id, session_uuid)
    if loaded is None:
        raise SessionNotFound(f"No session {session_uuid}.", field="session_uuid")
    return loaded


async def create_session(
    db: AsyncSession, project_id: uuid.UUID, body: SessionCreate
) -> tuple[SessionOut, bool]:
    """Create a session pinned to a version; re-creating the same uuid returns it (also
    when two creates of one uuid race: the one that loses answers as a re-create). Session
    uuids are unique per project: another project's sessions do not stand in the way.

    Returns the session and whether it was created by this call.
    """
    chat_models = ChatModelRepository(db)
    sessions = SessionRepository(db)
    chat_model = await require_chat_model(chat_models, project_id, body.chat_model)
    if body.session_uuid is not None:
        existing = await _existing(sessions, project_id, body.session_uuid, chat_model)
        if existing is not None:
            return existing, False
    session_uuid = body.session_uuid or uuid.uuid4()  # before resolving: it keys a split
    version = await resolve_version(
        chat_models, chat_model, body.version, assignment_key(session_uuid, body.metadata)
    )
    variables = check_values(version.variables, body.variables, version=version.number)
    chat_session = ChatSession(
        id=uuid.uuid4(),
        uuid=session_uuid,
        project_id=project_id,
        chat_model_id=chat_model.id,
        version_id=version.id,
        meta=body.metadata,
        variables=variables,
    )
    if not await sessions.add_unless_exists(chat_session):
        existing = await _existing(sessions, project_id, session_uuid, chat_model)
        if existing is None:  # taken, then deleted again since
            raise _session_taken(session_uuid, chat_model)
        return existing, False
    return session_out(LoadedSession(chat_session, version, chat_model)), True


async def _existing(
    sessions: SessionRepository,
    project_id: uuid.UUID,
    session_uuid: uuid.UUID,
    chat_model: ChatModel,
) -> SessionOut | None:
    """The project's session with this uuid if it is the chat model's; 409 if it is
    another chat model's; None if the project has no session with this uuid."""
    existing = await sessions.get_with_version(project_id, session_uuid)
    if existing is None:
        return None
    if existing.chat_model.id != chat_model.id:
        raise _session_taken(session_uuid, chat_model)
    return session_out(existing)


def _session_taken(session_uuid: uuid.UUID, chat_model: ChatModel) -> Conflict:
    """A session of another of the project's chat models has the uuid."""
    return Conflict(
        f"Session {session_uuid} already exists and is not a session of chat model "
        f"'{chat_model.name}'.",
        field="session_uuid",
    )


async def get_session(
    db: AsyncSession, project_id: uuid.UUID, session_uuid: uuid.UUID
) -> SessionOut:
    return session_out(await require_session(SessionRepository(db), project_id, session_uuid))


async def list_messages(
    db: AsyncSession,
    project_id: uuid.UUID,
    session_uuid: uuid.UUID,
    window: MessageWindow,
) -> MessagePage:
    """One page of the messages with ``after < seq < before``: from the oldest end of that
    range (``order=asc``, the default without ``before``) or the newest (``order=desc``,
    the default with ``before``). The page's data is oldest first either way."""
    repo = SessionRepository(db)
    loaded = await require_session(repo, project_id, session_uuid)
    rows = await repo.message_window(
        loaded.session.id,
        window.after,
        window.before,
        window.limit + 1,
        newest_first=window.newest_first,
    )
    has_more = len(rows) > window.limit
    rows = rows[: window.limit]
    if window.newest_first:
        rows.reverse()
    return MessagePage(
        data=[message_out(m) for m in rows],
        has_more=has_more,
        next_after=rows[-1].seq if has_more and not window.newest_first else None,
        next_before=rows[0].seq if has_more and window.newest_first else None,
    )


def _check_reposts(
    messages: list[MessageIn], stored: dict[uuid.UUID, SessionMessage], session_id: uuid.UUID
) -> None:
    seen: set[uuid.UUID] = set()
    for index, message in enumerate(messages):
        if message.uuid is None:
            continue
        if message.uuid in seen:
            raise InvalidInput(
                "This uuid appears twice in the request.", field=f"messages.{index}.uuid"
            )
        seen.add(message.uuid)
        previous = stored.get(message.uuid)
        if previous is None:
            continue
        if previous.session_id != session_id:  # message uuids are unique per project
            raise Conflict(
                "This message uuid belongs to another session.", field=f"messages.{index}.uuid"
            )
        if (previous.role, previous.content) != (message.role, message.content):
            raise Conflict(
                "This message uuid is already stored with a different role or content.",
                field=f"messages.{index}.uuid",
            )


async def add_messages(
    db: AsyncSession,
    project_id: uuid.UUID,
    session_uuid: uuid.UUID,
    body: MessagesAdd,
    count_tokens: TokenCounter | None = None,
) -> MessageList:
    """Append messages in order, all or none. Re-posted uuids return the stored message.

    The session's row is locked first (PostgreSQL; SQLite serializes write transactions),
    so concurrent adds to one session number their messages one after the other, and a
    uuid re-posted concurrently is found stored instead of inserted twice.

    ``count_tokens`` (the gateway's ``count_message_tokens``) counts each new message's
    tokens for the session's model once, here; without it the count is left null and a
    run counts the message when it first reads it."""
    repo = SessionRepository(db)
    loaded = await require_session(repo, project_id, session_uuid)
    session = loaded.session
    await repo.lock(session.id)
    uuids = [m.uuid for m in body.messages if m.uuid is not None]
    stored = await repo.messages_by_uuid(project_id, uuids)
    _check_reposts(body.messages, stored, session.id)
    fresh = [(i, m) for i, m in enumerate(body.messages) if m.uuid is None or m.uuid not in stored]
    if any(_needs_link(m) for _, m in fresh):
        tail = await repo.tail_since_last_assistant(session.id)
        fresh = link_results(fresh, pending_after(tail))
    seq = await repo.last_seq(session.id)
    rows: dict[int, SessionMessage] = {}
    for index, message in fresh:
        seq += 1
        rows[index] = _new_row(session, seq, message)
        if count_tokens is not None:
            rows[index].token_count = count_tokens(
                loaded.version.model, message_to_openai(rows[index])
            )
    await repo.append(list(rows.values()))
    for index, message in enumerate(body.messages):
        if message.uuid is not None and message.uuid in stored:
            rows[index] = stored[message.uuid]
    return MessageList(data=[message_out(rows[i]) for i in range(len(body.messages))])


def _needs_link(message: MessageIn) -> bool:
    return (message.role == "function" and message.name is None) or (
        message.role == "tool" and message.tool_call_id is None
    )


def _new_row(session: ChatSession, seq: int, message: MessageIn) -> SessionMessage:
    return SessionMessage(
        id=uuid.uuid4(),
        uuid=message.uuid or uuid.uuid4(),
        project_id=session.project_id,
        session_id=session.id,
        seq=seq,
        role=message.role,
        content=message.content,
        name=message.name,
        function_call=message.function_call.model_dump() if message.function_call else None,
        tool_calls=[tc.model_dump() for tc in message.tool_calls] if message.tool_calls else None,
        tool_call_id=message.tool_call_id,
        meta=message.metadata,
    )
