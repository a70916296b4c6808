"""Where an OpenAI-style call happens: resolve ``model``, build the call, record the run.

``model`` names a chat model of the project, as ``name`` (its ``production`` label, what
"deploy" means) or ``name@selector`` (``support_bot@staging``, ``support_bot@3``,
``support_bot@latest``: ``chat_models.service.model_selector``). That version's system
prompt, model, api_base and parameters apply; the caller's sampling parameters and
functions/tools override the version's for the call (``model`` and ``api_base`` never).

* With a session (``X-Session-Id`` or ``session_uuid``), the session is made on the
  version ``model`` selects if that uuid is new; the request's messages new to it are stored
  through ``sessions.service.add_messages``, and the call runs (its lease renewed, its
  outcome and reply stored) through the run engine (``chatmodel_service.runs``) as
  ``POST .../messages`` then ``.../run`` would.
* Without one, nothing but the run record is stored: a ``chat_run`` of the version with
  no session (``session_id`` null).
* With ``CHATMODEL_OPENAI_PASSTHROUGH`` on, a ``model`` that names no chat model is
  called as a raw LiteLLM model string, with no system prompt, and not recorded.

A chat model's calls (with a session or without) send the newest messages that fit the
model's input limit, as a session's run does (``runs.fit_conversation``); when even the
newest user message does not fit, or the version's strategy is ``fail`` and the
conversation does not, the run is recorded as failed and the answer is a 400
``context_length_exceeded``, without a model call. A passthrough call is sent as given.

Like a session's run, no database transaction is held while the model answers.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from chatmodel_service.chat_models.repository import ChatModelRepository
from chatmodel_service.chat_models.schemas import VersionSelector
from chatmodel_service.chat_models.service import model_selector, resolve_version
from chatmodel_service.chat_models.templates import check_values
from chatmodel_service.config import Settings
from chatmodel_service.db import Database
from chatmodel_service.errors import ChatModelNotFound, InvalidInput, ServiceError
from chatmodel_service.llm.gateway import LLMGateway
from chatmodel_service.llm.types import LLMCall, LLMFailure, LLMOutcome, LLMResult
from chatmodel_service.models import ChatModel, ChatModelVersion
from chatmodel_service.observability.metrics import record_run
from chatmodel_service.openai_compat.conversation import (
    RequestMessages,
    new_messages,
    read_messages,
    shift_fields,
)
from chatmodel_service.openai_compat.errors import upstream_error
from chatmodel_service.openai_compat.options import chat_options, named_session, text_options
from chatmodel_service.openai_compat.schemas import (
    CallDetail,
    ChatCompletionRequest,
    CompletionRequest,
    SamplingFields,
)
from chatmodel_service.releases.assignment import assignment_key
from chatmodel_service.releases.labels import PRODUCTION, split_model
from chatmodel_service.runs import (
    ContextFigures,
    FittedCall,
    PreparedRun,
    RunOptions,
    claim_session,
    complete_run,
    count_missing,
    finish_run,
    fit_conversation,
    record_sessionless_run,
    require_session_locked,
    version_call,
)
from chatmodel_service.sessions.messages import message_to_openai
from chatmodel_service.sessions.repository import SessionRepository
from chatmodel_service.sessions.schemas import MessageIn, MessagesAdd, SessionCreate
from chatmodel_service.sessions.service import add_messages, create_session


@dataclass(frozen=True)
class PreparedCompletion:
    """A call ready to send, and where its outcome is recorded."""

    call: LLMCall
    model: str  # the request's ``model``, echoed in the response
    chat_model: str | None = None
    version: ChatModelVersion | None = None  # None: a passthrough call, not recorded
    session_run: PreparedRun | None = None  # a session's call
    call_id: uuid.UUID = field(default_factory=uuid.uuid4)  # the run record's uuid
    key_name: str | None = None  # the API key that asked for it (recorded on the run)
    created: int = field(default_factory=lambda: int(time.time()))
    figures: ContextFigures | None = None  # what a chat model's call sends

    @property
    def passthrough(self) -> bool:
        return self.version is None

    @property
    def run_id(self) -> uuid.UUID | None:
        return None if self.passthrough else self.call_id

    @property
    def session_uuid(self) -> uuid.UUID | None:
        return self.session_run.loaded.session.uuid if self.session_run else None

    def recorded_session_run(self) -> PreparedRun | None:
        """A session's call as its run is recorded (with the API key that asked for it)."""
        if self.session_run is None:
            return None
        return replace(self.session_run, key_name=self.key_name)

    def completion_id(self, prefix: str) -> str:
        return f"{prefix}-{self.call_id.hex}"

    def detail(self, outcome: LLMOutcome, message_uuid: uuid.UUID | None) -> CallDetail:
        return CallDetail(
            chat_model=self.chat_model,
            version=self.version.number if self.version else None,
            model=outcome.model,
            session_uuid=self.session_uuid,
            run_uuid=self.run_id,
            message_uuid=message_uuid,
        )


async def _open_session(
    db: AsyncSession,
    project_id: uuid.UUID,
    chat_model: ChatModel,
    selector: VersionSelector,
    session_uuid: uuid.UUID,
    request: RequestMessages,
    body: SamplingFields,
    options: RunOptions,
    settings: Settings,
    gateway: LLMGateway,
) -> PreparedRun:
    """Make the session if new, claim it for this run (409 ``session_busy`` if another
    run holds it), store the request's new messages, build the call with the newest
    messages that fit (the history check above reads them all anyway)."""
    await create_session(
        db,
        project_id,
        SessionCreate(
            chat_model=chat_model.name,
            version=selector,
            session_uuid=session_uuid,
            metadata={"user_id": body.user} if body.user else {},
            variables=body.variables,
        ),
    )
    repo = SessionRepository(db)
    loaded = await require_session_locked(repo, project_id, session_uuid)
    stored = await repo.all_messages(loaded.session.id)
    added = new_messages(session_uuid, stored, request)
    stream = bool(getattr(body, "stream", False))
    run_id = await claim_session(
        db,
        settings,
        loaded,
        stream=stream,
        key_name=None,
        stream_format="openai" if stream else None,
    )
    model = loaded.version.model
    if added:
        try:
            await add_messages(
                db,
                project_id,
                session_uuid,
                MessagesAdd(messages=[m for _, m in added]),
                gateway.count_message_tokens,
            )
        except ServiceError as exc:
            raise shift_fields(exc, added) from None
        stored = await repo.all_messages(loaded.session.id)
    sendable = [m for m in stored if m.superseded_at is None]
    count_missing(gateway, model, sendable)
    call = version_call(
        loaded.version, loaded.session.variables, request.openai_instructions(), options, settings
    )
    fitted = fit_conversation(
        gateway,
        settings,
        loaded.version,
        call,
        [(message_to_openai(m), m.token_count or 0) for m in sendable],
    )
    return PreparedRun(
        loaded,
        fitted.call,
        run_id,
        figures=fitted.figures,
        rejected=fitted.failure,
        count_tokens=gateway.count_message_tokens,
        lease_seconds=settings.run_lease_seconds,
    )


def _passthrough(
    gateway: LLMGateway,
    settings: Settings,
    model: str,
    request: RequestMessages,
    options: RunOptions,
    session_uuid: uuid.UUID | None,
) -> PreparedCompletion:
    """A raw LiteLLM model string: a version with no system prompt and no defaults."""
    if session_uuid is not None:
        raise InvalidInput(
            f"Sessions belong to chat models and '{model}' names none.", field="session_uuid"
        )
    params = options.params.as_call_params() if options.params else {}
    problems = gateway.check_model(model, None, list(params))
    if problems:
        first = problems[0]
        if first.field == "model":
            raise ChatModelNotFound(first.detail, field="model")
        raise InvalidInput(first.detail, field=first.field.removeprefix("params."))
    bare = ChatModelVersion(
        system_prompt="", model=model, api_base=None, params={}, functions=None, tools=None
    )
    conversation = request.openai_instructions() + request.openai_conversation()
    call = version_call(bare, None, conversation, options, settings)
    return PreparedCompletion(call=call, model=model)


@contextmanager
def _version_named_by_model(after_at: bool) -> Iterator[None]:
    """With ``name@selector`` the version comes from ``model``, so errors about it name
    ``model``."""
    try:
        yield
    except ServiceError as exc:
        if after_at and exc.field == "version":
            exc.field = "model"
        raise


async def prepare(
    database: Database,
    gateway: LLMGateway,
    settings: Settings,
    project_id: uuid.UUID,
    body: ChatCompletionRequest | CompletionRequest,
    request: RequestMessages,
    options: RunOptions,
    session_uuid: uuid.UUID | None,
) -> PreparedCompletion:
    """Resolve ``body.model`` and build the call; a session's new messages are stored.
    A prompt that cannot fit the model is recorded as a failed run and raised as its
    OpenAI error (400 ``context_length_exceeded``)."""
    async with database.transaction() as db:
        chat_models = ChatModelRepository(db)
        chat_model = await chat_models.get_by_name(project_id, split_model(body.model)[0])
        if chat_model is None:
            if not settings.openai_passthrough:
                raise ChatModelNotFound(
                    f"The model '{body.model}' does not exist: no chat model of this project "
                    "has that name (GET /v1/models lists them).",
                    field="model",
                )
            return _passthrough(gateway, settings, body.model, request, options, session_uuid)
        written = model_selector(body.model)[1]
        selector = PRODUCTION if written is None else written
        if session_uuid is not None:
            with _version_named_by_model(written is not None):
                run = await _open_session(
                    db,
                    project_id,
                    chat_model,
                    selector,
                    session_uuid,
                    request,
                    body,
                    options,
                    settings,
                    gateway,
                )
        else:
            key = assignment_key(uuid.uuid4(), {"user_id": body.user})
            with _version_named_by_model(written is not None):
                version = await resolve_version(chat_models, chat_model, selector, key)
    if session_uuid is not None:
        if run.rejected is not None:  # recorded on the session (which keeps the messages)
            await finish_run(database, run, run.rejected)
            raise upstream_error(run.rejected, passthrough=False)
        return PreparedCompletion(
            call=run.call,
            model=body.model,
            chat_model=chat_model.name,
            version=run.loaded.version,
            session_run=run,
            call_id=run.run_id,
            figures=run.figures,
        )
    variables = check_values(version.variables, body.variables, version=version.number)
    prepared = PreparedCompletion(
        call=version_call(version, variables, request.openai_instructions(), options, settings),
        model=body.model,
        chat_model=chat_model.name,
        version=version,
    )
    conversation = request.openai_conversation()
    return await _fit_stateless(database, gateway, settings, prepared, conversation)


async def _fit_stateless(
    database: Database,
    gateway: LLMGateway,
    settings: Settings,
    prepared: PreparedCompletion,
    conversation: list[dict[str, Any]],
) -> PreparedCompletion:
    """A call without a session: the request's conversation fitted as a session's would
    be (its messages are counted here; they are in memory anyway)."""
    assert prepared.version is not None
    model = prepared.version.model
    fitted: FittedCall = fit_conversation(
        gateway,
        settings,
        prepared.version,
        prepared.call,
        [(m, gateway.count_message_tokens(model, m)) for m in conversation],
    )
    prepared = replace(prepared, call=fitted.call, figures=fitted.figures)
    if fitted.failure is not None:
        await record_sessionless(database, prepared, fitted.failure, stream=False)
        raise upstream_error(fitted.failure, passthrough=False)
    return prepared


async def prepare_chat(
    database: Database,
    gateway: LLMGateway,
    settings: Settings,
    project_id: uuid.UUID,
    body: ChatCompletionRequest,
    session_header: str | None,
) -> PreparedCompletion:
    session_uuid = named_session(session_header, body.session_uuid)
    request, options = read_messages(body.messages), chat_options(body)
    return await prepare(
        database, gateway, settings, project_id, body, request, options, session_uuid
    )


async def prepare_text(
    database: Database,
    gateway: LLMGateway,
    settings: Settings,
    project_id: uuid.UUID,
    body: CompletionRequest,
    session_header: str | None,
) -> PreparedCompletion:
    """The prompt as one user message after the system prompt; no functions or tools (the
    version's defaults are left out: a text completion cannot carry a call)."""
    if session_header is not None:
        raise InvalidInput(
            "Sessions are kept for /v1/chat/completions only; leave X-Session-Id out.",
            field="X-Session-Id",
        )
    options = text_options(body)
    prompt = MessageIn(role="user", content=body.prompt_text)
    request = RequestMessages(instructions=[], conversation=[(0, prompt)])
    prepared = await prepare(database, gateway, settings, project_id, body, request, options, None)
    call = replace(prepared.call, functions=None, function_call=None, tools=None, tool_choice=None)
    return replace(prepared, call=call)


async def record_sessionless(
    database: Database, prepared: PreparedCompletion, outcome: LLMOutcome, *, stream: bool
) -> None:
    """Record a call without a session: its run record (none for a passthrough call). A
    session's call is recorded by ``runs.finish_run``, as its native run is."""
    assert prepared.session_run is None
    if prepared.version is None:
        return
    await record_sessionless_run(
        database,
        prepared.version.id,
        outcome,
        stream=stream,
        run_id=prepared.run_id,
        key_name=prepared.key_name,
        figures=prepared.figures,
    )
    record_run(prepared.chat_model, prepared.version.number, outcome)


async def complete(
    database: Database, gateway: LLMGateway, prepared: PreparedCompletion
) -> tuple[LLMResult, CallDetail]:
    """Call the model once and record the run; a failed call raises its OpenAI error. A
    session's call runs as a native run does (``runs.complete_run``: its lease is
    renewed, a cancelled call is recorded as interrupted), and one that lost its lease
    meanwhile (its reply not stored) is an ``interrupted`` error, never a reply."""
    session_run = prepared.recorded_session_run()
    outcome: LLMOutcome
    if session_run is not None:
        finished = await complete_run(database, gateway, session_run)
        outcome, message_uuid = finished.outcome, finished.message_uuid
    else:
        outcome, message_uuid = await gateway.complete(prepared.call), None
        await record_sessionless(database, prepared, outcome, stream=False)
    if isinstance(outcome, LLMFailure):
        raise upstream_error(outcome, passthrough=prepared.passthrough)
    return outcome, prepared.detail(outcome, message_uuid)
