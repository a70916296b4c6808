"""Where a response happens: bind it to a session and version (``binding.py``), store its
input, run it through the run engine, and show it as OpenAI's Response object.

A response is a run. With ``store`` (the default) it runs in a session, exactly as
``POST /v1/sessions/{uuid}/run`` would: the session's lease (one run at a time: a second
response on a busy conversation is a 409 ``session_busy``), its input stored as session
messages, the newest messages that fit sent after the version's system prompt (and the
request's ``instructions``, which are not stored), the reply stored under the uuid its
output items show, usage, cost and metrics recorded on the run. ``truncation`` picks how a
history that does not fit is cut: ``auto`` drops the oldest messages (pair-safe: a call
and its results go together), ``disabled`` (the default) refuses the call with a 400
``context_length_exceeded``, recorded as a failed run.

With ``store: false`` nothing but the run record is stored (no session, no messages), and
the response cannot be retrieved or continued afterwards.

A failed model call is an error answer in OpenAI's shape (its run is recorded as failed
and shows as a ``failed`` response); a stream that fails after it began ends with a
``response.failed`` event (``stream.py``).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from chatmodel_service.config import Settings
from chatmodel_service.db import Database
from chatmodel_service.errors import InvalidInput, ServiceError
from chatmodel_service.limits import check_functions, check_messages
from chatmodel_service.llm.gateway import LLMGateway
from chatmodel_service.llm.types import LLMResult
from chatmodel_service.models import ChatRun, SessionMessage
from chatmodel_service.models.base import utcnow
from chatmodel_service.openai_compat.conversation import RequestMessages
from chatmodel_service.openai_compat.errors import upstream_error
from chatmodel_service.openai_compat.service import PreparedCompletion, record_sessionless
from chatmodel_service.responses_api import binding
from chatmodel_service.responses_api.ids import conversation_id, response_id
from chatmodel_service.responses_api.items import (
    item_texts,
    message_items,
    read_input,
    reply_items,
    repointed,
)
from chatmodel_service.responses_api.options import echo_of, run_options
from chatmodel_service.responses_api.pages import page_of
from chatmodel_service.responses_api.repository import ResponsesRepository, StoredResponse
from chatmodel_service.responses_api.schemas import (
    ConversationRef,
    IncompleteDetails,
    Item,
    ItemPage,
    ResponseCreate,
    ResponseDeleted,
    ResponseDetail,
    ResponseEcho,
    ResponseError,
    ResponseObject,
    ResponseStatus,
    ResponseUsage,
)
from chatmodel_service.runs import (
    BackgroundRuns,
    PreparedRun,
    RunOptions,
    cancel_run,
    claim_session,
    finish_run,
    fit_conversation,
    fit_session_call,
    require_session_locked,
    version_call,
)
from chatmodel_service.sessions.messages import message_to_openai
from chatmodel_service.sessions.repository import SessionRepository
from chatmodel_service.sessions.schemas import MessageIn, MessagesAdd, total_tokens
from chatmodel_service.sessions.service import add_messages


@dataclass(frozen=True)
class PreparedResponse:
    """A response ready to call the model: the call as the OpenAI-compatible API runs it
    (a session's run, or a call stored nowhere), and what its Response object shows."""

    completion: PreparedCompletion
    echo: ResponseEcho
    version: int
    reply_uuid: uuid.UUID  # the stored reply's uuid (or, stored nowhere, the run's)
    created_at: int = field(default_factory=lambda: int(time.time()))

    @property
    def id(self) -> str:
        return response_id(self.completion.call_id)

    def detail(self) -> ResponseDetail:
        session = self.completion.session_uuid
        return ResponseDetail(
            chat_model=self.echo.model,
            version=self.version,
            session_uuid=str(session) if session else None,
            run_uuid=str(self.completion.call_id),
        )


def _check(body: ResponseCreate) -> None:
    if body.conversation is not None and body.previous_response_id is not None:
        raise InvalidInput(
            "Give conversation or previous_response_id, not both.", field="previous_response_id"
        )
    if body.background and not body.store:
        raise InvalidInput("A background response is stored; leave store out.", field="store")
    if body.conversation is not None and not body.store:
        raise InvalidInput(
            "A response in a conversation is stored with it; leave store out.", field="store"
        )
    if (
        body.model is None
        and body.prompt is None
        and body.conversation is None
        and (body.previous_response_id is None)
    ):
        raise InvalidInput("Name a chat model with model (or prompt).", field="model")


def _instructions(body: ResponseCreate) -> list[dict[str, Any]]:
    return [{"role": "system", "content": body.instructions}] if body.instructions else []


def _strategy(body: ResponseCreate) -> Literal["truncate", "fail"]:
    """``truncation``: ``auto`` drops the oldest messages, ``disabled`` refuses."""
    return "truncate" if body.truncation == "auto" else "fail"


async def prepare_response(
    database: Database,
    gateway: LLMGateway,
    settings: Settings,
    project_id: uuid.UUID,
    body: ResponseCreate,
    key_name: str | None,
) -> PreparedResponse:
    """Bind the response, store its input and claim its session (one transaction); a
    prompt that cannot fit is recorded as a failed run and raised as its OpenAI error."""
    _check(body)
    messages = read_input(body.input)
    check_messages(settings, item_texts(messages), "input")
    check_functions(settings, body.tools, "tools")
    options = run_options(body)
    named = binding.named_chat_model(body)
    if not body.store:
        return await _prepare_unstored(
            database, gateway, settings, project_id, body, named, messages, options, key_name
        )
    async with database.transaction() as db:
        repo = SessionRepository(db)
        if body.conversation_id is not None:
            loaded = await binding.conversation_session(db, project_id, body.conversation_id, named)
        else:
            if body.previous_response_id is not None:
                session_uuid, _ = await binding.continued_session(
                    db, project_id, body.previous_response_id, named
                )
            else:
                assert named is not None  # _check
                session_uuid = await binding.new_session(db, project_id, named, body)
            loaded = await require_session_locked(repo, project_id, session_uuid)
        session = loaded.session
        # The input first (its seqs are echoed; a busy session rolls it back with the rest).
        stored = None
        if messages:
            try:
                stored = await add_messages(
                    db,
                    project_id,
                    session.uuid,
                    MessagesAdd(messages=messages),
                    gateway.count_message_tokens,
                )
            except ServiceError as exc:
                raise repointed(exc, "input") from None
        conversation = conversation_id(session.uuid) if body.conversation is not None else None
        echo = echo_of(body, loaded.chat_model.name, conversation=conversation)
        if stored is not None:
            seqs = [m.seq for m in stored.data]
            echo = echo.model_copy(update={"input_seq": (min(seqs), max(seqs))})
        run_id = await claim_session(
            db,
            settings,
            loaded,
            stream=body.stream,
            key_name=key_name,
            responses_request=echo.model_dump(mode="json"),
            stream_format="responses" if body.stream or body.background else None,
        )
        call = version_call(
            loaded.version, session.variables, _instructions(body), options, settings
        )
        fitted = await fit_session_call(
            repo, gateway, settings, loaded.version, session.id, call, strategy=_strategy(body)
        )
        reply_uuid = uuid.uuid4()
        run = PreparedRun(
            loaded,
            fitted.call,
            run_id,
            key_name,
            figures=fitted.figures,
            rejected=fitted.failure,
            count_tokens=gateway.count_message_tokens,
            reply_uuid=reply_uuid,
            lease_seconds=settings.run_lease_seconds,
        )
    if run.rejected is not None:  # recorded on the session, which keeps the input
        await finish_run(database, run, run.rejected)
        raise upstream_error(run.rejected, passthrough=False)
    completion = PreparedCompletion(
        call=run.call,
        model=loaded.chat_model.name,
        chat_model=loaded.chat_model.name,
        version=loaded.version,
        session_run=run,
        call_id=run_id,
        key_name=key_name,
        figures=run.figures,
    )
    return PreparedResponse(completion, echo, loaded.version.number, reply_uuid)


async def _prepare_unstored(
    database: Database,
    gateway: LLMGateway,
    settings: Settings,
    project_id: uuid.UUID,
    body: ResponseCreate,
    named: binding.NamedChatModel | None,
    messages: list[MessageIn],
    options: RunOptions,
    key_name: str | None,
) -> PreparedResponse:
    """A response stored nowhere: its conversation is the history of the response it
    continues (read, not written) and its input; only its run record is kept."""
    history: list[dict[str, Any]] = []
    async with database.transaction() as db:
        if body.previous_response_id is not None:
            previous = await binding.stored_response(
                db, project_id, body.previous_response_id, "previous_response_id"
            )
            if previous.session is None:
                raise binding.ResponseNotFound(
                    f"Response '{body.previous_response_id}' was made with store=false, so "
                    "it cannot be continued.",
                    field="previous_response_id",
                )
            named = named or binding.NamedChatModel(previous.chat_model.name)
            reply = await ResponsesRepository(db).reply(previous.run.id)
            last = (
                reply.seq
                if reply
                else await ResponsesRepository(db).newest_live_seq(previous.session.session.id)
            )
            rows = await ResponsesRepository(db).live_between(previous.session.session.id, 1, last)
            history = [message_to_openai(row) for row in rows]
        assert named is not None  # _check
        version, variables = await binding.stateless_version(db, project_id, named, body)
    call = version_call(version, variables, _instructions(body), options, settings)
    request = RequestMessages(instructions=[], conversation=list(enumerate(messages)))
    conversation = history + request.openai_conversation()
    run_id = uuid.uuid4()
    prepared = PreparedCompletion(
        call=call,
        model=named.name,
        chat_model=named.name,
        version=version,
        call_id=run_id,
        key_name=key_name,
    )
    fitted = fit_conversation(
        gateway,
        settings,
        version,
        call,
        [(m, gateway.count_message_tokens(version.model, m)) for m in conversation],
        strategy=_strategy(body),
    )
    prepared = replace(prepared, call=fitted.call, figures=fitted.figures)
    if fitted.failure is not None:
        await record_sessionless(database, prepared, fitted.failure, stream=False)
        raise upstream_error(fitted.failure, passthrough=False)
    echo = echo_of(body, named.name, conversation=None)
    return PreparedResponse(prepared, echo, version.number, run_id)


# -- the Response object -----------------------------------------------------------------


def usage_of(prompt_tokens: int | None, completion_tokens: int | None) -> ResponseUsage:
    prompt, completion = prompt_tokens or 0, completion_tokens or 0
    return ResponseUsage(
        input_tokens=prompt,
        output_tokens=completion,
        total_tokens=total_tokens(prompt, completion),
    )


def response_object(
    echo: ResponseEcho,
    *,
    id: str,
    created_at: int,
    status: ResponseStatus,
    output: list[Item],
    usage: ResponseUsage | None,
    detail: ResponseDetail,
    error: ResponseError | None = None,
) -> ResponseObject:
    incomplete = IncompleteDetails(reason="max_output_tokens") if status == "incomplete" else None
    return ResponseObject(
        id=id,
        created_at=created_at,
        status=status,
        model=echo.model,
        output=output,
        usage=usage,
        error=error,
        incomplete_details=incomplete,
        instructions=echo.instructions,
        tools=echo.tools,
        tool_choice=echo.tool_choice,
        parallel_tool_calls=echo.parallel_tool_calls,
        temperature=echo.temperature,
        top_p=echo.top_p,
        max_output_tokens=echo.max_output_tokens,
        truncation=echo.truncation,
        metadata=echo.metadata,
        previous_response_id=echo.previous_response_id,
        conversation=ConversationRef(id=echo.conversation) if echo.conversation else None,
        prompt=echo.prompt,
        text=echo.text,
        store=echo.store,
        background=echo.background,
        user=echo.user,
        safety_identifier=echo.safety_identifier,
        chatmodel=detail,
    )


def started_response(prepared: PreparedResponse) -> ResponseObject:
    """A background response as it starts: in progress, no output yet."""
    return response_object(
        prepared.echo,
        id=prepared.id,
        created_at=prepared.created_at,
        status="in_progress",
        output=[],
        usage=None,
        detail=prepared.detail(),
    )


def finished_status(finish_reason: str | None) -> ResponseStatus:
    return "incomplete" if finish_reason == "length" else "completed"


def completed_response(prepared: PreparedResponse, result: LLMResult) -> ResponseObject:
    """A response whose model call has just succeeded."""
    return response_object(
        prepared.echo,
        id=prepared.id,
        created_at=prepared.created_at,
        status=finished_status(result.finish_reason),
        output=reply_items(
            prepared.reply_uuid, result.content, result.tool_calls, result.function_call
        ),
        usage=usage_of(result.prompt_tokens, result.completion_tokens),
        detail=prepared.detail(),
    )


def _stored_status(run: ChatRun, reply: SessionMessage | None) -> ResponseStatus:
    if run.status == "queued":
        return "queued"
    if run.status == "running":
        return "in_progress"
    if run.status in ("failed", "cancelled"):
        return "cancelled" if run.status == "cancelled" else "failed"
    return finished_status(reply.finish_reason if reply else None)


def stored_echo(stored: StoredResponse) -> ResponseEcho:
    """A Responses API run's echo; a run of another API shows defaults."""
    if stored.run.responses_request is not None:
        return ResponseEcho.model_validate(stored.run.responses_request)
    return ResponseEcho(model=stored.chat_model.name)


async def _show(database: Database, stored: StoredResponse) -> ResponseObject:
    async with database.transaction(write=False) as db:
        reply = await ResponsesRepository(db).reply(stored.run.id)
    run = stored.run
    status = _stored_status(run, reply)
    error = None
    if status == "failed":  # a cancelled response has no error, as on OpenAI
        error = ResponseError.of(run.error_type or "failed", run.error_log or "")
    session = stored.session.session.uuid if stored.session else None
    return response_object(
        stored_echo(stored),
        id=response_id(run.id),
        created_at=int(run.created_at.timestamp()),
        status=status,
        output=message_items(reply) if reply is not None else [],
        usage=usage_of(run.prompt_tokens, run.completion_tokens) if run.finished_at else None,
        error=error,
        detail=ResponseDetail(
            chat_model=stored.chat_model.name,
            version=stored.version.number,
            session_uuid=str(session) if session else None,
            run_uuid=str(run.id),
        ),
    )


async def _require_stored(
    database: Database, project_id: uuid.UUID, response: str
) -> StoredResponse:
    """A response that was stored (``store: false`` ones, and calls of other APIs made
    without a session, are not)."""
    async with database.transaction(write=False) as db:
        stored = await binding.stored_response(db, project_id, response, "response_id")
    if stored.session is None:
        raise binding.ResponseNotFound(f"No response '{response}'.", field="response_id")
    return stored


async def get_response(database: Database, project_id: uuid.UUID, response: str) -> ResponseObject:
    return await _show(database, await _require_stored(database, project_id, response))


async def streamed_run(database: Database, project_id: uuid.UUID, response: str) -> uuid.UUID:
    """The run of a stored response, whose events ``GET /v1/responses/{id}?stream=true``
    follows."""
    return (await _require_stored(database, project_id, response)).run.id


async def cancel_response(
    database: Database, runs: BackgroundRuns, project_id: uuid.UUID, response: str
) -> ResponseObject:
    """Stop a response in progress (``runs.cancel_run``: from any process, nothing stored
    for its reply); a finished one is answered as it is."""
    stored = await _require_stored(database, project_id, response)
    await cancel_run(database, runs, project_id, stored.run.id)
    return await get_response(database, project_id, response)


async def delete_response(
    database: Database, project_id: uuid.UUID, response: str
) -> ResponseDeleted:
    """The response is gone from this API (its messages stay in their conversation, its
    run record in the figures)."""
    stored = await _require_stored(database, project_id, response)
    async with database.transaction() as db:
        await ResponsesRepository(db).delete_response(stored.run.id, utcnow())
    return ResponseDeleted(id=response_id(stored.run.id))


async def input_items(
    database: Database,
    project_id: uuid.UUID,
    response: str,
    *,
    after: str | None,
    limit: int,
    order: str,
) -> ItemPage:
    """The items a response took as input: those its request stored (a native run's:
    the messages since the reply before its own)."""
    stored = await _require_stored(database, project_id, response)
    assert stored.session is not None
    session_id = stored.session.session.id
    echo_range = stored_echo(stored).input_seq if stored.run.responses_request else None
    async with database.transaction(write=False) as db:
        repo = ResponsesRepository(db)
        if echo_range is not None:
            rows = await repo.live_between(session_id, *echo_range)
        elif stored.run.responses_request is None and (reply := await repo.reply(stored.run.id)):
            before = await repo.previous_assistant_seq(session_id, reply.seq)
            rows = await repo.live_between(session_id, before + 1, reply.seq - 1)
        else:
            rows = []
    items = [item for row in rows for item in message_items(row)]
    return page_of(items, after=after, limit=limit, newest_first=order == "desc")
