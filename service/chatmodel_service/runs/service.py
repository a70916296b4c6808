"""Where a run happens: claim the session, build the prompt, call the gateway, store the reply.

A run holds no database transaction while the model is thinking:

1. **start** (one write transaction): lock the session row, answer a repeated
   Idempotency-Key from the stored result, take the session's lease (one run at a time;
   409 ``session_busy`` otherwise), insert the run record as ``running``, append the
   request's messages, read the newest messages that fit the model's input limit
   (``context.py``; a regenerate reads them without the reply it answers again, which is
   left as it is);
2. the model call, while a heartbeat renews the lease (see ``lease.py``); skipped when
   even the newest user message does not fit (or the version's strategy is ``fail`` and
   the history does not): the run then fails with ``context_window_exceeded``;
3. **finish** (one write transaction): the run's outcome, the reply (on success; a
   regenerate's old reply is superseded only then) and the lease's release, together.

A server that dies between 1 and 3 leaves a ``running`` record and a lease that lapses;
whoever takes the session next (or the next server start) marks that run failed with
``interrupted``. So every session is always usable again within one lease.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
import uuid
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import anyio
from sqlalchemy.ext.asyncio import AsyncSession

from chatmodel_service.chat_models.templates import render_system_prompt
from chatmodel_service.config import Settings
from chatmodel_service.db import Database
from chatmodel_service.errors import (
    IdempotencyKeyReused,
    NothingToRegenerate,
    RunInProgress,
    SessionBusy,
    StorageUnavailable,
    storage_failure,
    storage_unavailable,
)
from chatmodel_service.llm.gateway import LLMGateway
from chatmodel_service.llm.types import LLMCall, LLMFailure, LLMOutcome, LLMResult, TokenCounter
from chatmodel_service.models import ChatModelVersion, ChatRun, ChatSession
from chatmodel_service.models.base import utcnow
from chatmodel_service.observability.metrics import record_run
from chatmodel_service.runs.context import ContextFigures, FittedCall, fit_session_call
from chatmodel_service.runs.lease import keep_lease, lease_until, released, wait_for_release
from chatmodel_service.runs.repository import RunRepository
from chatmodel_service.runs.schemas import (
    AttemptOut,
    FunctionCallOut,
    LLMResponse,
    ResponseDetail,
    RunList,
    RunOptions,
    RunOut,
    RunRequest,
    ToolCallOut,
)
from chatmodel_service.sessions.repository import LoadedSession, SessionRepository
from chatmodel_service.sessions.schemas import MessagesAdd, UsageOut
from chatmodel_service.sessions.service import add_messages, require_session

logger = logging.getLogger(__name__)

# A run waiting for a session (if_busy=wait) that another process holds looks again at
# least this often (seconds).
LONGEST_POLL = 0.25


def build_call(loaded: LoadedSession, body: RunOptions, settings: Settings) -> LLMCall:
    """The version's system prompt (rendered with the session's variables) and the
    options; the session's messages are added as they fit (``context.py``)."""
    return version_call(loaded.version, loaded.session.variables, [], body, settings)


def version_call(
    version: ChatModelVersion,
    variables: dict[str, str] | None,
    conversation: list[dict[str, Any]],
    body: RunOptions,
    settings: Settings,
) -> LLMCall:
    """One call of ``version`` on ``conversation`` (OpenAI-format messages): its system
    prompt rendered with ``variables`` first, its parameters under the request's."""
    system_prompt = render_system_prompt(version.system_prompt, version.variables, variables)
    messages = list(conversation)
    if system_prompt:
        messages.insert(0, {"role": "system", "content": system_prompt})
    params: dict[str, Any] = dict(version.params)
    if body.params is not None:
        params |= body.params.model_dump(exclude_none=True)
    timeout = min(
        float(params.pop("timeout", settings.llm_timeout_seconds)), settings.llm_timeout_seconds
    )
    num_retries = int(params.pop("num_retries", 0))
    fallbacks = tuple(params.pop("fallbacks", None) or ())
    if body.functions or body.tools:
        functions = [f.model_dump(exclude_none=True) for f in body.functions or []] or None
        tools = [t.model_dump(exclude_none=True) for t in body.tools or []] or None
    else:
        functions, tools = version.functions, version.tools
    return LLMCall(
        model=version.model,
        messages=messages,
        params=params,
        api_base=version.api_base,
        functions=functions,
        function_call=body.function_call if functions else None,
        tools=tools,
        tool_choice=body.tool_choice if tools else None,
        timeout=timeout,
        num_retries=num_retries,
        fallbacks=fallbacks,
        retry_backoff=settings.retry_backoff_seconds,
    )


def _parsed(arguments: str) -> dict[str, Any] | None:
    try:
        value = json.loads(arguments) if arguments else {}
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _function_call_out(call: dict[str, str] | None) -> FunctionCallOut | None:
    if call is None:
        return None
    return FunctionCallOut(
        name=call["name"], arguments=call["arguments"], args=_parsed(call["arguments"])
    )


def _tool_calls_out(calls: list[dict[str, Any]] | None) -> list[ToolCallOut] | None:
    if not calls:
        return None
    return [ToolCallOut(id=c["id"], function=_function_call_out(c["function"])) for c in calls]


def llm_response(
    loaded: LoadedSession,
    run_id: uuid.UUID,
    outcome: LLMOutcome,
    message_uuid: uuid.UUID | None,
    figures: ContextFigures | None = None,
) -> LLMResponse:
    detail = ResponseDetail(
        name=loaded.chat_model.name,
        version=loaded.version.number,
        version_uuid=loaded.version.id,
        model=outcome.model,
        session_uuid=loaded.session.uuid,
        message_uuid=message_uuid,
        run_uuid=run_id,
    )
    return outcome_response(outcome, detail, figures)


def outcome_response(
    outcome: LLMOutcome, detail: ResponseDetail, figures: ContextFigures | None = None
) -> LLMResponse:
    """The gateway's outcome as an LLMResponse (failures as ``error: true``), with what
    the prompt sent (``figures``) when it was fitted."""
    attempts = [AttemptOut(**vars(a)) for a in outcome.attempts] or None
    sent = figures.columns() if figures is not None else {}
    if isinstance(outcome, LLMFailure):
        return LLMResponse(
            error=True,
            error_type=outcome.error_type,
            error_log=outcome.error_log,
            latency_ms=outcome.latency_ms,
            api_response=outcome.api_response,
            detail=detail,
            attempts=attempts,
            **sent,
        )
    total = None
    if outcome.prompt_tokens is not None or outcome.completion_tokens is not None:
        total = (outcome.prompt_tokens or 0) + (outcome.completion_tokens or 0)
    return LLMResponse(
        content=outcome.content,
        raw_output=outcome.content,
        function_call=_function_call_out(outcome.function_call),
        tool_calls=_tool_calls_out(outcome.tool_calls),
        finish_reason=outcome.finish_reason,
        usage=UsageOut(
            prompt_tokens=outcome.prompt_tokens,
            completion_tokens=outcome.completion_tokens,
            total_tokens=total,
        ),
        cost=outcome.cost,
        latency_ms=outcome.latency_ms,
        api_response=outcome.api_response,
        detail=detail,
        attempts=attempts,
        **sent,
    )


def outcome_values(outcome: LLMOutcome) -> dict[str, Any]:
    """A finished run's columns from its outcome."""
    failed = isinstance(outcome, LLMFailure)
    result = outcome if isinstance(outcome, LLMResult) else None
    return {
        "status": "failed" if failed else "succeeded",
        "model": outcome.model,
        "error_type": outcome.error_type if isinstance(outcome, LLMFailure) else None,
        "error_log": outcome.error_log if isinstance(outcome, LLMFailure) else None,
        "latency_ms": outcome.latency_ms,
        "prompt_tokens": result.prompt_tokens if result else None,
        "completion_tokens": result.completion_tokens if result else None,
        "cost": result.cost if result else None,
        "attempts": [vars(a) for a in outcome.attempts] or None,
        "finished_at": utcnow(),
    }


def run_record(
    session_id: uuid.UUID | None,
    version_id: uuid.UUID,
    outcome: LLMOutcome,
    *,
    stream: bool,
    run_id: uuid.UUID | None = None,
    key_name: str | None = None,
    figures: ContextFigures | None = None,
) -> ChatRun:
    """The run record of one call of ``version_id`` (``session_id`` None: a call made
    without a session, as the OpenAI-compatible API's stateless calls are)."""
    return ChatRun(
        id=run_id or uuid.uuid4(),
        session_id=session_id,
        version_id=version_id,
        stream=stream,
        key_name=key_name,
        **outcome_values(outcome),
        **(figures.columns() if figures is not None else {}),
    )


def _reply_message(result: LLMResult) -> dict[str, Any]:
    """The reply as the next run sends it (OpenAI format), for counting its tokens."""
    message: dict[str, Any] = {"role": "assistant", "content": result.content}
    if result.function_call is not None:
        message["function_call"] = result.function_call
    if result.tool_calls is not None:
        message["tool_calls"] = result.tool_calls
    return message


def _reply_values(
    loaded: LoadedSession, result: LLMResult, count_tokens: TokenCounter | None
) -> dict[str, Any]:
    tokens = count_tokens(loaded.version.model, _reply_message(result)) if count_tokens else None
    return {
        "id": uuid.uuid4(),
        "uuid": uuid.uuid4(),
        "project_id": loaded.session.project_id,
        "session_id": loaded.session.id,
        "role": "assistant",
        "content": result.content,
        "function_call": result.function_call,
        "tool_calls": result.tool_calls,
        "model": result.model,
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
        "cost": result.cost,
        "latency_ms": result.latency_ms,
        "finish_reason": result.finish_reason,
        "token_count": tokens,
    }


@dataclass(frozen=True)
class PreparedRun:
    """A run that holds its session (``run_id`` is its ``running`` record and the
    lease's holder, for ``lease_seconds`` at a time) and whose model call is built,
    ready to send."""

    loaded: LoadedSession
    call: LLMCall
    run_id: uuid.UUID
    key_name: str | None = None  # the API key that asked for it (recorded on the run)
    idempotency_key: str | None = None  # the result is kept for replays when set
    figures: ContextFigures | None = None  # what the prompt sends (context.py)
    # Set when the prompt cannot fit the model: recorded as the outcome, no model call.
    rejected: LLMFailure | None = None
    count_tokens: TokenCounter | None = None  # counts the reply's tokens when it is stored
    # A regenerate: the reply it answers again, superseded when the new one is stored.
    supersedes: uuid.UUID | None = None
    # How long the lease was taken for; renewed every third of that while the model answers.
    lease_seconds: float = field(kw_only=True)


@dataclass(frozen=True)
class FinishedRun:
    """A run's outcome as recorded: the model's, or ``interrupted`` when the run had lost
    its lease by then (and nothing was stored); its result, and its stored reply."""

    outcome: LLMOutcome
    response: LLMResponse
    message_uuid: uuid.UUID | None


@dataclass(frozen=True)
class Replayed:
    """A request whose Idempotency-Key already has a finished run: its stored result.
    ``freed``: replaying it gave up that run, whose lease had lapsed, and so freed the
    session."""

    response: LLMResponse
    freed: bool = False


def request_hash(body: RunRequest) -> str:
    canonical = json.dumps(body.fingerprint_fields(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def interrupted(model: str, latency_ms: int = 0, reason: str | None = None) -> LLMFailure:
    return LLMFailure(
        model=model,
        error_type="interrupted",
        error_log=reason
        or "The server handling this run stopped before the run finished (its lease on the "
        "session lapsed); nothing was stored for it. Run again.",
        latency_ms=latency_ms,
    )


async def _give_up(db: AsyncSession, run_id: uuid.UUID) -> None:
    """Mark a run whose lease lapsed as failed (``interrupted``), if it is still running."""
    values = outcome_values(interrupted(""))
    del values["model"]  # keep the model the run was started with
    await RunRepository(db).finish(run_id, values)


def _live_lease_left(session: ChatSession, now: datetime) -> float | None:
    """Seconds left on the session's lease, or None when no run holds it or it lapsed."""
    expires = session.lease_expires_at
    if session.lease_run_id is None or expires is None or expires < now:
        return None
    return (expires - now).total_seconds()


def _retry_after(left: float) -> int:
    return min(max(1, int(left) + 1), 5)


async def claim_session(
    db: AsyncSession,
    settings: Settings,
    loaded: LoadedSession,
    *,
    stream: bool,
    key_name: str | None,
    idempotency: tuple[str, str] | None = None,
) -> uuid.UUID:
    """Take the session's lease for a new run and insert its ``running`` record, in the
    caller's write transaction (which must have locked the session). Raises SessionBusy
    when a live run holds it; a lapsed holder is marked interrupted first."""
    session = loaded.session
    sessions = SessionRepository(db)
    now = utcnow()
    holder = session.lease_run_id
    left = _live_lease_left(session, now)
    if left is not None:
        raise SessionBusy(
            "Another run is in progress on this session; retry when it has finished, or "
            "send if_busy=wait to queue behind it.",
            retry_after=_retry_after(left),
        )
    if holder is not None:
        await _give_up(db, holder)
    run_id = uuid.uuid4()
    until = lease_until(settings.run_lease_seconds, now)
    if not await sessions.take_lease(session.id, run_id, now, until):
        raise SessionBusy("Another run took this session a moment ago; retry.")
    key, digest = idempotency or (None, None)
    await RunRepository(db).start(
        {
            "id": run_id,
            "session_id": session.id,
            "version_id": loaded.version.id,
            "status": "running",
            "stream": stream,
            "model": loaded.version.model,
            "latency_ms": 0,
            "key_name": key_name,
            "idempotency_key": key,
            "request_hash": digest,
        }
    )
    return run_id


async def _replay(
    db: AsyncSession, loaded: LoadedSession, key: str, digest: str
) -> Replayed | None:
    """The stored result of the session's run with this Idempotency-Key, if it has one
    (in the caller's write transaction, which locked the session). A run still
    ``running`` whose lease lapsed (its server died) is given up as interrupted here, so
    a retry gets that failure rather than a 409 until the next run takes the session."""
    session = loaded.session
    existing = await RunRepository(db).by_idempotency_key(session.id, key)
    if existing is None:
        return None
    if existing.request_hash != digest:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was already used on this session with a different request "
            "body; use a new key for a new run.",
            field="Idempotency-Key",
        )
    if existing.status == "running":
        left = _live_lease_left(session, utcnow())
        if session.lease_run_id == existing.id and left is not None:
            raise RunInProgress(
                "The first request with this Idempotency-Key is still running; retry later "
                "to get its result.",
                retry_after=_retry_after(left),
            )
        await _give_up(db, existing.id)
        await SessionRepository(db).release_lease(session.id, existing.id)
        return Replayed(_unstored_result(loaded, existing, interrupted(existing.model)), True)
    if existing.result is None:  # finished without a stored result: it was interrupted
        failure = LLMFailure(
            model=existing.model,
            error_type=existing.error_type or "interrupted",
            error_log=existing.error_log or interrupted(existing.model).error_log,
            latency_ms=existing.latency_ms,
        )
        return Replayed(_unstored_result(loaded, existing, failure))
    return Replayed(LLMResponse.model_validate(existing.result))


def _unstored_result(loaded: LoadedSession, run: ChatRun, failure: LLMFailure) -> LLMResponse:
    """The result of a run given up without one (interrupted), with its detail."""
    return llm_response(loaded, run.id, failure, None)


async def _try_start(
    database: Database,
    gateway: LLMGateway,
    settings: Settings,
    project_id: uuid.UUID,
    session_uuid: uuid.UUID,
    body: RunRequest,
    key_name: str | None,
    idempotency: tuple[str, str] | None,
) -> PreparedRun | Replayed:
    async with database.transaction() as db:
        repo = SessionRepository(db)
        loaded = await require_session_locked(repo, project_id, session_uuid)
        replayed = await _replay(db, loaded, *idempotency) if idempotency else None
        if replayed is None:
            return await _claim_and_fit(db, gateway, settings, loaded, body, key_name, idempotency)
    if replayed.freed:
        released(loaded.session)
    return replayed


async def _claim_and_fit(
    db: AsyncSession,
    gateway: LLMGateway,
    settings: Settings,
    loaded: LoadedSession,
    body: RunRequest,
    key_name: str | None,
    idempotency: tuple[str, str] | None,
) -> PreparedRun:
    """The start transaction's writes: the claim, the request's messages, the prompt."""
    repo = SessionRepository(db)
    session = loaded.session
    run_id = await claim_session(
        db, settings, loaded, stream=body.stream, key_name=key_name, idempotency=idempotency
    )
    if body.messages:
        await add_messages(
            db,
            session.project_id,
            session.uuid,
            MessagesAdd(messages=body.messages),
            gateway.count_message_tokens,
        )
    call = build_call(loaded, body, settings)
    replaced = await _reply_to_regenerate(repo, session.id) if body.regenerate else None
    if replaced is not None:
        fitted = await _fit_without(db, gateway, settings, loaded, replaced, call)
    else:
        fitted = await fit_session_call(repo, gateway, settings, loaded.version, session.id, call)
    return PreparedRun(
        loaded,
        fitted.call,
        run_id,
        key_name,
        idempotency[0] if idempotency else None,
        figures=fitted.figures,
        rejected=fitted.failure,
        count_tokens=gateway.count_message_tokens,
        supersedes=replaced,
        lease_seconds=settings.run_lease_seconds,
    )


async def _reply_to_regenerate(repo: SessionRepository, session_id: uuid.UUID) -> uuid.UUID:
    """The row id of the reply a regenerate answers again: the session's newest message."""
    last = await repo.last_message(session_id)
    if last is None or last.role != "assistant":
        raise NothingToRegenerate(
            "The session's newest message is not an assistant reply, so there is nothing to "
            "answer again; run without regenerate.",
            field="regenerate",
        )
    return last.id


async def _fit_without(
    db: AsyncSession,
    gateway: LLMGateway,
    settings: Settings,
    loaded: LoadedSession,
    reply_id: uuid.UUID,
    call: LLMCall,
) -> FittedCall:
    """A regenerate's prompt: the session's messages but the reply it answers again. The
    prompt is read as if that reply were superseded, in a savepoint rolled back at once:
    the reply stays as it is while the run is in flight and if it fails (or its server
    dies); only a successful run supersedes it, with storing the new one (finish_run)."""
    repo = SessionRepository(db)
    savepoint = await db.begin_nested()
    try:
        await repo.supersede(reply_id, utcnow())
        return await fit_session_call(
            repo, gateway, settings, loaded.version, loaded.session.id, call
        )
    finally:
        await savepoint.rollback()


async def require_session_locked(
    repo: SessionRepository, project_id: uuid.UUID, session_uuid: uuid.UUID
) -> LoadedSession:
    """The session, its row locked for this write transaction (PostgreSQL)."""
    loaded = await repo.get_with_version(project_id, session_uuid, lock=True)
    if loaded is None:
        return await require_session(repo, project_id, session_uuid)  # raises not found
    return loaded


async def start_run(
    database: Database,
    gateway: LLMGateway,
    settings: Settings,
    project_id: uuid.UUID,
    session_uuid: uuid.UUID,
    body: RunRequest,
    *,
    key_name: str | None = None,
    idempotency_key: str | None = None,
) -> PreparedRun | Replayed:
    """Claim the session for a run (or replay a finished run with the same key). With
    ``if_busy=wait``, a busy session is tried again, with growing pauses, until
    ``wait_seconds`` have passed; then the last 409 stands."""
    idempotency = (idempotency_key, request_hash(body)) if idempotency_key else None
    deadline = time.monotonic() + (body.wait_seconds if body.if_busy == "wait" else 0)
    pause = 0.04
    while True:
        try:
            return await _try_start(
                database, gateway, settings, project_id, session_uuid, body, key_name, idempotency
            )
        except SessionBusy:
            left = deadline - time.monotonic()
            if left <= 0:
                raise
            # Woken at once by a release in this process; polls for other processes,
            # with jitter, never more than LONGEST_POLL apart.
            wait = min(pause * random.uniform(0.5, 1), left)
            await wait_for_release(project_id, session_uuid, wait)
            pause = min(pause * 2, LONGEST_POLL)


async def finish_run(database: Database, prepared: PreparedRun, outcome: LLMOutcome) -> FinishedRun:
    """The write phase: the run's outcome, the reply (on success) and the lease's release,
    in one transaction. A run that lost its lease (given up as interrupted while it was
    still going) stores nothing more and reports ``interrupted``.

    When the database cannot store the outcome (disk full, read-only), nothing of it is
    stored and ``StorageUnavailable`` is raised; first the run is marked failed with that
    code and the session freed, in a smaller transaction, so the session does not stay
    busy for the rest of its lease (should that write fail too, the lease lapses as if
    the server had died)."""
    try:
        return await _store_outcome(database, prepared, outcome)
    except Exception as exc:
        cause = storage_failure(exc)
        if cause is None:
            raise
        unavailable = storage_unavailable(cause)
        await _free_unstored(database, prepared, outcome, unavailable)
        raise unavailable from exc


def _storage_failure(outcome: LLMOutcome, error: StorageUnavailable) -> LLMFailure:
    return LLMFailure(
        model=outcome.model,
        error_type=error.code,
        error_log=error.detail,
        latency_ms=outcome.latency_ms,
    )


def unstored_run(
    prepared: PreparedRun, outcome: LLMOutcome, error: StorageUnavailable
) -> FinishedRun:
    """A run whose outcome the database could not store (``finish_run`` raised ``error``),
    as a failure to report where an answer has already begun (a stream's last event)."""
    failure = _storage_failure(outcome, error)
    response = llm_response(prepared.loaded, prepared.run_id, failure, None, prepared.figures)
    return FinishedRun(failure, response, None)


async def _free_unstored(
    database: Database, prepared: PreparedRun, outcome: LLMOutcome, error: StorageUnavailable
) -> None:
    failure = _storage_failure(outcome, error)
    session = prepared.loaded.session
    try:
        async with database.transaction() as db:
            if await SessionRepository(db).release_lease(session.id, prepared.run_id):
                await RunRepository(db).finish(prepared.run_id, outcome_values(failure))
    except Exception as exc:
        if storage_failure(exc) is None:
            raise
        logger.warning(
            "run %s: neither its outcome nor its failure could be stored; session %s is "
            "held until the run's lease lapses",
            prepared.run_id,
            session.uuid,
        )
        return
    released(session)
    record_run(prepared.loaded.chat_model.name, prepared.loaded.version.number, failure)


async def _store_outcome(
    database: Database, prepared: PreparedRun, outcome: LLMOutcome
) -> FinishedRun:
    loaded = prepared.loaded
    reply = None
    if isinstance(outcome, LLMResult):
        reply = _reply_values(loaded, outcome, prepared.count_tokens)
    async with database.transaction() as db:
        sessions = SessionRepository(db)
        # First, as it locks the session's row (PostgreSQL): still ours, then freed.
        held = await sessions.release_lease(loaded.session.id, prepared.run_id)
        values = outcome_values(outcome)
        if prepared.key_name is not None:
            values["key_name"] = prepared.key_name
        if prepared.figures is not None:
            values |= prepared.figures.columns()
        response = llm_response(
            loaded, prepared.run_id, outcome, reply["uuid"] if reply else None, prepared.figures
        )
        if prepared.idempotency_key is not None:
            values["result"] = response.model_dump(mode="json")
        if not (held and await RunRepository(db).finish(prepared.run_id, values)):
            gone = not await sessions.exists(loaded.session.id)
            lost = interrupted(
                outcome.model,
                outcome.latency_ms,
                "The session was deleted (with force=true) while this run was going; its "
                "reply was not stored."
                if gone
                else "This run outlived its lease on the session (its server could not renew "
                "it) and was given up; its reply was not stored. Run again.",
            )
            return FinishedRun(lost, llm_response(loaded, prepared.run_id, lost, None), None)
        if reply is not None:
            if prepared.supersedes is not None:
                await sessions.supersede(prepared.supersedes, utcnow())
            await sessions.append_reply({**reply, "run_id": prepared.run_id})
    released(loaded.session)
    record_run(loaded.chat_model.name, loaded.version.number, outcome)
    return FinishedRun(outcome, response, reply["uuid"] if reply else None)


async def abandon_run(database: Database, prepared: PreparedRun, started: float) -> None:
    """Record a run cut short by cancellation (server shutdown) as interrupted, shielded
    from the cancellation itself."""
    failure = interrupted(
        prepared.call.model,
        int((time.perf_counter() - started) * 1000),
        "The run was cancelled before the model answered (the server shut down); "
        "nothing was stored for it.",
    )
    # Nothing is left to answer: a storage failure here is logged by finish_run, and the
    # cancellation goes on.
    with anyio.CancelScope(shield=True), suppress(StorageUnavailable):
        await finish_run(database, prepared, failure)


async def complete_run(
    database: Database, gateway: LLMGateway, prepared: PreparedRun
) -> FinishedRun:
    """Call the model for a claimed run while renewing its lease, and store its outcome
    (``finish_run``); cancelled (server shutdown), the run is recorded as interrupted.
    Every run on a session that is not streamed goes through here."""
    if prepared.rejected is not None:  # the prompt cannot fit: no model call
        return await finish_run(database, prepared, prepared.rejected)
    started = time.perf_counter()
    session_id = prepared.loaded.session.id
    try:
        async with keep_lease(database, prepared.lease_seconds, session_id, prepared.run_id):
            outcome = await gateway.complete(prepared.call)
    except BaseException:
        await abandon_run(database, prepared, started)
        raise
    return await finish_run(database, prepared, outcome)


async def recover_lapsed_runs(database: Database) -> int:
    """Mark every run whose lease lapsed as interrupted and free its session (at start-up;
    taking a session over does the same for one session)."""
    async with database.transaction() as db:
        sessions = SessionRepository(db)
        lapsed = await sessions.lapsed_leases(utcnow())
        for session_id, run_id in lapsed:
            await _give_up(db, run_id)
            await sessions.release_lease(session_id, run_id)
    return len(lapsed)


def run_out(
    run: ChatRun, session_uuid: uuid.UUID, number: int, message_uuid: uuid.UUID | None
) -> RunOut:
    """A run of the session known by ``session_uuid``, whose reply is ``message_uuid``."""
    usage = None
    if run.prompt_tokens is not None or run.completion_tokens is not None:
        usage = UsageOut(
            prompt_tokens=run.prompt_tokens,
            completion_tokens=run.completion_tokens,
            total_tokens=(run.prompt_tokens or 0) + (run.completion_tokens or 0),
        )
    return RunOut(
        uuid=run.id,
        session_uuid=session_uuid,
        version=number,
        version_uuid=run.version_id,
        status=run.status,
        stream=run.stream,
        model=run.model,
        error_type=run.error_type,
        error_log=run.error_log,
        latency_ms=run.latency_ms,
        usage=usage,
        cost=run.cost,
        message_uuid=message_uuid,
        created_at=run.created_at,
        finished_at=run.finished_at,
        key_name=run.key_name,
        attempts=[AttemptOut(**a) for a in run.attempts] if run.attempts else None,
        idempotency_key=run.idempotency_key,
        messages_sent=run.messages_sent,
        messages_dropped=run.messages_dropped,
        prompt_tokens_estimate=run.prompt_tokens_estimate,
    )


async def list_runs(db: AsyncSession, project_id: uuid.UUID, session_uuid: uuid.UUID) -> RunList:
    loaded = await require_session(SessionRepository(db), project_id, session_uuid)
    rows = await RunRepository(db).list_for_session(loaded.session.id)
    return RunList(
        data=[run_out(run, session_uuid, number, message) for run, number, message in rows]
    )
