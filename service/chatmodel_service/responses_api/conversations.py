"""The Conversations API: a conversation is a session, its items the session's live
messages (see ``repository.py``). Never commits: the request's unit of work does.

* Made without a model (``model`` is a chatmodel extension of ``POST /v1/conversations``),
  a conversation is held on the project's oldest chat model with a published version
  until its first response, which pins it to the chat model it names (``binding.py``).
* Its metadata is the session's metadata (16 string pairs at most, through this API).
* Deleting a conversation deletes the session, with its messages and runs (a 409 while a
  response is in progress on it).
* Messages are append-only, so deleting an item hides its message: the message is left
  out of every read of this API and never sent to a model again, and its seq stays
  taken (the native API still lists it, superseded, with ``deleted_at``). An item takes
  the items that only make sense with it along: a function call its outputs, an output
  its call and the call's other outputs, an assistant message's text its calls. Deleting
  is refused (409 ``session_busy``) while a response is in progress on the conversation.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from chatmodel_service.config import Settings
from chatmodel_service.errors import NotFound, ServiceError, SessionBusy
from chatmodel_service.limits import check_messages
from chatmodel_service.llm.types import TokenCounter
from chatmodel_service.models import ChatSession, SessionMessage
from chatmodel_service.models.base import utcnow
from chatmodel_service.responses_api.binding import ConversationNotFound, default_chat_model
from chatmodel_service.responses_api.ids import (
    conversation_id,
    parse_conversation_id,
    parse_item_id,
)
from chatmodel_service.responses_api.items import (
    item_texts,
    message_items,
    read_input,
    repointed,
)
from chatmodel_service.responses_api.pages import after_item, page
from chatmodel_service.responses_api.repository import ResponsesRepository
from chatmodel_service.responses_api.schemas import (
    ConversationCreate,
    ConversationDeleted,
    ConversationObject,
    Item,
    ItemPage,
)
from chatmodel_service.sessions.lifecycle import delete_session, held_by_a_run
from chatmodel_service.sessions.repository import LoadedSession, SessionRepository
from chatmodel_service.sessions.schemas import MessageIn, MessagesAdd, SessionCreate
from chatmodel_service.sessions.service import add_messages, create_session


class ItemNotFound(NotFound):
    code = "item_not_found"


def conversation_object(session: ChatSession) -> ConversationObject:
    return ConversationObject(
        id=conversation_id(session.uuid),
        created_at=int(session.created_at.timestamp()),
        metadata=session.meta,
    )


async def _require(
    db: AsyncSession, project_id: uuid.UUID, conversation: str, *, lock: bool = False
) -> LoadedSession:
    session_uuid = parse_conversation_id(conversation)
    loaded = None
    if session_uuid is not None:
        loaded = await SessionRepository(db).get_with_version(project_id, session_uuid, lock=lock)
    if loaded is None:
        raise ConversationNotFound(f"No conversation '{conversation}'.", field="conversation_id")
    return loaded


async def _append(
    db: AsyncSession,
    project_id: uuid.UUID,
    session: ChatSession,
    messages: list[MessageIn],
    count_tokens: TokenCounter,
) -> list[SessionMessage]:
    """Store ``messages`` after the session's newest; the rows stored."""
    last = await SessionRepository(db).last_seq(session.id)
    try:
        await add_messages(
            db, project_id, session.uuid, MessagesAdd(messages=messages), count_tokens
        )
    except ServiceError as exc:
        raise repointed(exc, "items") from None
    return await ResponsesRepository(db).live_between(session.id, last + 1, last + len(messages))


async def create_conversation(
    db: AsyncSession,
    settings: Settings,
    project_id: uuid.UUID,
    body: ConversationCreate,
    count_tokens: TokenCounter,
) -> ConversationObject:
    messages = read_input(body.items, field="items")
    check_messages(settings, item_texts(messages), "items")
    chat_model = body.model or await default_chat_model(db, project_id)
    created, _ = await create_session(
        db, project_id, SessionCreate(chat_model=chat_model, metadata=dict(body.metadata or {}))
    )
    loaded = await _require(db, project_id, str(created.uuid))
    if messages:
        await _append(db, project_id, loaded.session, messages, count_tokens)
    return conversation_object(loaded.session)


async def get_conversation(
    db: AsyncSession, project_id: uuid.UUID, conversation: str
) -> ConversationObject:
    return conversation_object((await _require(db, project_id, conversation)).session)


async def update_conversation(
    db: AsyncSession, project_id: uuid.UUID, conversation: str, metadata: dict[str, str]
) -> ConversationObject:
    """Replace the conversation's metadata."""
    loaded = await _require(db, project_id, conversation, lock=True)
    await SessionRepository(db).set_metadata(loaded.session.id, dict(metadata))
    loaded.session.meta = dict(metadata)
    return conversation_object(loaded.session)


async def delete_conversation(
    db: AsyncSession, project_id: uuid.UUID, conversation: str
) -> ConversationDeleted:
    loaded = await _require(db, project_id, conversation)
    await delete_session(db, project_id, loaded.session.uuid, force=False)
    return ConversationDeleted(id=conversation_id(loaded.session.uuid))


# -- items -------------------------------------------------------------------------------


async def add_items(
    db: AsyncSession,
    settings: Settings,
    project_id: uuid.UUID,
    conversation: str,
    given: list[dict[str, object]],
    count_tokens: TokenCounter,
) -> ItemPage:
    """Append items; the page of the items stored, oldest first."""
    messages = read_input(given, field="items")
    check_messages(settings, item_texts(messages), "items")
    loaded = await _require(db, project_id, conversation)
    rows = await _append(db, project_id, loaded.session, messages, count_tokens)
    items = [item for row in rows for item in message_items(row)]
    return page(items, len(items))


async def list_items(
    db: AsyncSession,
    project_id: uuid.UUID,
    conversation: str,
    *,
    after: str | None,
    limit: int,
    order: str,
) -> ItemPage:
    """A page of the conversation's items, read a page of messages at a time on the
    (session_id, seq) index: every message shows as one item at least, so ``limit + 2``
    messages (the one holding ``after``, a page, one more) always make a full page."""
    loaded = await _require(db, project_id, conversation)
    session = loaded.session
    repo = ResponsesRepository(db)
    newest_first = order == "desc"
    from_seq = None
    if after is not None:
        found = parse_item_id(after)
        holder = await repo.live_message(session.id, found.message_uuid) if found else None
        if holder is None:
            raise ItemNotFound(f"No item '{after}' in this conversation.", field="after")
        from_seq = holder.seq
    rows = await repo.live_page(session.id, from_seq, limit + 2, newest_first=newest_first)
    items: list[Item] = []
    for row in rows:
        shown = message_items(row)
        items.extend(reversed(shown) if newest_first else shown)
    following = after_item(items, after)
    return page(following, limit, more=len(following) > limit)


async def _item_message(
    db: AsyncSession, session: ChatSession, item_id: str
) -> tuple[SessionMessage, Item]:
    found = parse_item_id(item_id)
    row = (
        await ResponsesRepository(db).live_message(session.id, found.message_uuid)
        if found
        else None
    )
    item = next((i for i in message_items(row) if i.id == item_id), None) if row else None
    if row is None or item is None:
        raise ItemNotFound(f"No item '{item_id}' in this conversation.", field="item_id")
    return row, item


async def get_item(
    db: AsyncSession, project_id: uuid.UUID, conversation: str, item_id: str
) -> Item:
    loaded = await _require(db, project_id, conversation)
    return (await _item_message(db, loaded.session, item_id))[1]


async def delete_item(
    db: AsyncSession, project_id: uuid.UUID, conversation: str, item_id: str
) -> ConversationObject:
    """Hide the item's message, and the messages that only make sense with it."""
    loaded = await _require(db, project_id, conversation, lock=True)
    session = loaded.session
    if held_by_a_run(session):
        raise SessionBusy(
            "A response is in progress on this conversation; delete the item once it has finished."
        )
    row, _ = await _item_message(db, session, item_id)
    repo = ResponsesRepository(db)
    doomed = [row]
    call = row
    if row.role == "tool":  # an output: its call (the assistant message before the outputs)
        before = await repo.previous_assistant_seq(session.id, row.seq)
        found = await repo.live_at(session.id, before) if before else None
        call = found if found is not None and _answers(found, row) else row
        if call is not row:
            doomed.append(call)
    if call.role == "assistant" and call.tool_calls:
        ids = [str(c["id"]) for c in call.tool_calls]
        doomed.extend(r for r in await repo.live_results_of(session.id, ids) if r.id != row.id)
    await repo.delete_messages([m.id for m in doomed], utcnow())
    return conversation_object(session)


def _answers(call: SessionMessage, result: SessionMessage) -> bool:
    return any(str(c.get("id")) == result.tool_call_id for c in call.tool_calls or [])
