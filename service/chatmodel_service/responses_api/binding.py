"""Which chat model and version a response runs on, and the session it runs in.

A conversation is a session and sessions are pinned to a version, so:

* a response names its chat model with ``model`` (the published version, the split's side
  sticky per ``safety_identifier``/``user``, as a native session's is per
  ``metadata.user_id``; ``name@staging``, ``name@3`` or ``name@latest`` for another label
  or version, see ``chat_models.service.model_selector``) or with ``prompt`` (``id``: the
  chat model; ``version``: a version by number; ``variables``: its template variables).
  Both at once must name the same one;
* without ``conversation`` or ``previous_response_id``, a new session is made on it;
* with ``conversation``, the response runs in that session. A session that has had no
  run yet is pinned again to the chat model (and version) the response names: so a
  conversation made without a model takes its first response's. Once it has had a run,
  the response runs on the session's version, and naming another chat model, version
  or variables is a 400 (start another conversation, or fork this one natively);
* with ``previous_response_id``, the response continues that response's session when that
  response is the session's newest message; otherwise it branches off there (a fork of
  the session up to that response's reply), as OpenAI's responses do.

Never commits: the start transaction of ``service.prepare_response`` does.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from chatmodel_service.chat_models.repository import ChatModelRepository
from chatmodel_service.chat_models.schemas import VersionSelector
from chatmodel_service.chat_models.service import (
    list_chat_models,
    model_selector,
    require_chat_model,
    resolve_version,
)
from chatmodel_service.chat_models.templates import check_values
from chatmodel_service.errors import InvalidInput, NotFound, ServiceError
from chatmodel_service.models import ChatModelVersion
from chatmodel_service.releases.assignment import assignment_key
from chatmodel_service.releases.labels import PRODUCTION
from chatmodel_service.responses_api.ids import parse_conversation_id, parse_response_id
from chatmodel_service.responses_api.repository import ResponsesRepository, StoredResponse
from chatmodel_service.responses_api.schemas import ResponseCreate, ResponseEcho
from chatmodel_service.sessions.lifecycle import fork_session
from chatmodel_service.sessions.repository import LoadedSession, SessionRepository
from chatmodel_service.sessions.schemas import SessionCreate, SessionFork
from chatmodel_service.sessions.service import create_session


class ResponseNotFound(NotFound):
    code = "response_not_found"


class ConversationNotFound(NotFound):
    code = "conversation_not_found"


@dataclass(frozen=True)
class NamedChatModel:
    """The chat model (and version, variables) a request names."""

    name: str
    version: int | None = None
    variables: dict[str, str] | None = None
    field: str = "model"  # the request field that named it
    label: str | None = None  # a label or "latest" (``model="name@staging"``)

    @property
    def selector(self) -> VersionSelector:
        if self.version is not None:
            return self.version
        return self.label if self.label is not None else PRODUCTION

    @property
    def after_at(self) -> bool:
        """Whether ``model`` chose the version (``name@...``)."""
        return self.field == "model" and (self.version is not None or self.label is not None)


def _named_by_model(model: str) -> NamedChatModel:
    name, selector = model_selector(model)
    if isinstance(selector, int):
        return NamedChatModel(name, version=selector)
    return NamedChatModel(name, label=selector)


def named_chat_model(body: ResponseCreate) -> NamedChatModel | None:
    if body.prompt is None:
        return _named_by_model(body.model) if body.model is not None else None
    prompt = body.prompt
    if body.model and body.model != prompt.id:
        raise InvalidInput(
            f"model '{body.model}' and prompt.id '{prompt.id}' name different chat models; "
            "a prompt is a chat model's version, so leave model out or name the same one.",
            field="model",
        )
    version = None
    if prompt.version is not None:
        if not prompt.version.isdigit() or int(prompt.version) < 1:
            raise InvalidInput(
                'prompt.version is a version number, e.g. "3".', field="prompt.version"
            )
        version = int(prompt.version)
    return NamedChatModel(prompt.id, version, prompt.variables, field="prompt")


@contextmanager
def _named_by(named: NamedChatModel) -> Iterator[None]:
    """Errors about the version or its variables name the request field that chose them
    (``prompt.version``, ``prompt.variables.<name>``)."""
    try:
        yield
    except ServiceError as exc:
        field = exc.field or ""
        if named.field == "prompt" and (field == "version" or field.startswith("variables")):
            exc.field = f"prompt.{field}"
        elif named.field == "model" and field == "version" and named.after_at:
            exc.field = "model"  # the version was chosen after '@' in model
        raise


def user_metadata(body: ResponseCreate) -> dict[str, str]:
    """A new session's metadata: the end user who keys the split's side."""
    user = body.safety_identifier or body.user
    return {"user_id": user} if user else {}


async def stateless_version(
    db: AsyncSession, project_id: uuid.UUID, named: NamedChatModel, body: ResponseCreate
) -> tuple[ChatModelVersion, dict[str, str] | None]:
    """The version (and checked variables) of a response stored nowhere."""
    chat_models = ChatModelRepository(db)
    chat_model = await require_chat_model(chat_models, project_id, named.name)
    key = assignment_key(uuid.uuid4(), user_metadata(body))
    with _named_by(named):
        version = await resolve_version(chat_models, chat_model, named.selector, key)
        return version, check_values(version.variables, named.variables, version=version.number)


async def default_chat_model(db: AsyncSession, project_id: uuid.UUID) -> str:
    """The chat model a conversation made without one is held on until its first
    response: the project's oldest chat model with a published version."""
    published = [m for m in (await list_chat_models(db, project_id)).data if m.published_versions]
    if not published:
        raise InvalidInput(
            "This project has no chat model with a published version to hold the "
            "conversation; publish one, or name one with model.",
            field="model",
        )
    return min(published, key=lambda m: m.created_at).name


def _mismatch(loaded: LoadedSession, named: NamedChatModel) -> str | None:
    if named.name != loaded.chat_model.name:
        return f"chat model '{named.name}'"
    if named.version is not None and named.version != loaded.version.number:
        return f"version {named.version}"
    if named.variables is not None and named.variables != (loaded.session.variables or {}):
        return "other variables"
    return None


async def _bind(
    db: AsyncSession, project_id: uuid.UUID, loaded: LoadedSession, named: NamedChatModel | None
) -> bool:
    """Re-pin a session that has had no run to what the request names (True: it was);
    refuse another chat model, version or variables once it has had one."""
    if named is None or (other := _mismatch(loaded, named)) is None:
        return False
    session = loaded.session
    if await ResponsesRepository(db).has_runs(session.id):
        raise InvalidInput(
            f"Conversation {session.uuid} runs on chat model '{loaded.chat_model.name}' "
            f"version {loaded.version.number} (it has had responses), not on {other}; "
            "leave it out, or start another conversation.",
            field=named.field,
        )
    chat_models = ChatModelRepository(db)
    chat_model = await require_chat_model(chat_models, project_id, named.name)
    key = assignment_key(session.uuid, session.meta)
    given = named.variables if named.variables is not None else session.variables
    with _named_by(named):
        version = await resolve_version(chat_models, chat_model, named.selector, key)
        variables = check_values(version.variables, given, version=version.number)
    await SessionRepository(db).repin(session.id, chat_model.id, version.id, variables)
    return True


async def conversation_session(
    db: AsyncSession, project_id: uuid.UUID, conversation: str, named: NamedChatModel | None
) -> LoadedSession:
    """The session of ``conversation``, its row locked (``runs.require_session_locked``),
    pinned as the request names it if it can be."""
    session_uuid = parse_conversation_id(conversation)
    repo = SessionRepository(db)
    loaded = None
    if session_uuid is not None:
        loaded = await repo.get_with_version(project_id, session_uuid, lock=True)
    if loaded is None:
        raise ConversationNotFound(f"No conversation '{conversation}'.", field="conversation")
    if await _bind(db, project_id, loaded, named):
        loaded = await repo.get_with_version(project_id, loaded.session.uuid, lock=True)
        assert loaded is not None  # locked since it was read
    return loaded


async def stored_response(
    db: AsyncSession, project_id: uuid.UUID, response_id: str, field: str
) -> StoredResponse:
    run_id = parse_response_id(response_id)
    found = await ResponsesRepository(db).response(project_id, run_id) if run_id else None
    if found is None:
        raise ResponseNotFound(f"No response '{response_id}'.", field=field)
    return found


async def continued_session(
    db: AsyncSession,
    project_id: uuid.UUID,
    previous_response_id: str,
    named: NamedChatModel | None,
) -> tuple[uuid.UUID, int]:
    """The session a response continues (that response's, or a branch of it made here)
    and the seq it continues after."""
    previous = await stored_response(db, project_id, previous_response_id, "previous_response_id")
    if previous.session is None:
        raise ResponseNotFound(
            f"Response '{previous_response_id}' was made with store=false, so it cannot be "
            "continued; send the whole conversation as input.",
            field="previous_response_id",
        )
    repo = ResponsesRepository(db)
    reply = await repo.reply(previous.run.id)
    point = reply.seq if reply is not None else _input_end(previous)
    if point is None:
        raise InvalidInput(
            f"Response '{previous_response_id}' stored neither input nor output to continue from.",
            field="previous_response_id",
        )
    loaded = previous.session
    if named is not None and (other := _mismatch(loaded, named)) is not None:
        raise InvalidInput(
            f"Response '{previous_response_id}' ran on chat model '{loaded.chat_model.name}' "
            f"version {loaded.version.number}, not on {other}; a continuation runs on the "
            "same version.",
            field=named.field,
        )
    if point >= await repo.newest_live_seq(loaded.session.id):
        return loaded.session.uuid, point
    fork, _ = await fork_session(db, project_id, loaded.session.uuid, SessionFork(at_seq=point))
    return fork.uuid, point


def _input_end(previous: StoredResponse) -> int | None:
    if previous.run.responses_request is None:
        return None
    seqs = ResponseEcho.model_validate(previous.run.responses_request).input_seq
    return seqs[1] if seqs else None


async def new_session(
    db: AsyncSession, project_id: uuid.UUID, named: NamedChatModel, body: ResponseCreate
) -> uuid.UUID:
    with _named_by(named):
        created, _ = await create_session(
            db,
            project_id,
            SessionCreate(
                chat_model=named.name,
                version=named.selector,
                metadata=user_metadata(body),
                variables=named.variables,
            ),
        )
    return created.uuid
