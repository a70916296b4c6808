"""Where a run happens: claim the session, build the prompt, call the gateway, store the reply.

A run holds no database transaction while the model is thinking:

1. **start** (one write transaction): lock the session row, answer a repeated
   Idempotency-Key from the stored result (``idempotency.py``), take the session's lease
   (``lease.py``: one run at a time; 409 ``session_busy`` otherwise), insert the run record
   as ``running``, append the request's messages, read the newest messages that fit the
   model's input limit (``prompt_fit.py``; a regenerate reads them without the reply it
   answers again, which is left as it is);
2. the model call, while a heartbeat renews the lease (see ``lease.py``; a streamed run
   relays it, ``stream_run.py``), after the summary call of a ``summarize`` version whose
   window dropped messages no stored summary covers (``summaries.py``: its failure never
   fails the run, which then truncates); skipped when even the newest user message does not fit
   (or the version's strategy is ``fail`` and the history does not): the run then fails
   with ``context_window_exceeded``;
3. **finish** (one write transaction): the run's outcome, the reply (on success; a
   regenerate's old reply is superseded only then) and the lease's release, together.

A server that dies between 1 and 3 leaves a ``running`` record and a lease that lapses;
whoever takes the session next (or the next server start) marks that run failed with
``interrupted``. So every session is always usable again within one lease.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from contextlib import suppress
from dataclasses import dataclass, field, replace

import anyio
from sqlalchemy.ext.asyncio import AsyncSession

from chatmodel_service.config import Settings
from chatmodel_service.db import Database
from chatmodel_service.errors import (
    NothingToRegenerate,
    SessionBusy,
    StorageUnavailable,
    storage_failure,
    storage_unavailable,
)
from chatmodel_service.llm.gateway import LLMGateway
from chatmodel_service.llm.types import LLMCall, LLMFailure, LLMOutcome, LLMResult, TokenCounter
from chatmodel_service.models.base import utcnow
from chatmodel_service.observability.metrics import record_run
from chatmodel_service.runs.call import build_call
from chatmodel_service.runs.idempotency import Replayed, replay, request_hash
from chatmodel_service.runs.lease import (
    RunLeftQueue,
    claim_session,
    interrupt_holder,
    keep_lease,
    released,
    require_session_locked,
    wait_for_release,
)
from chatmodel_service.runs.outcomes import (
    interrupted,
    llm_response,
    outcome_values,
    reply_values,
)
from chatmodel_service.runs.prompt_fit import (
    ContextFigures,
    FittedCall,
    fit_session_call,
    with_summary,
)
from chatmodel_service.runs.queue import Place, join_queue
from chatmodel_service.runs.repository import RunRepository
from chatmodel_service.runs.schemas import LLMResponse, RunRequest
from chatmodel_service.runs.summaries import SummaryPlan, write_summary
from chatmodel_service.sessions.repository import LoadedSession, SessionRepository
from chatmodel_service.sessions.schemas import MessagesAdd
from chatmodel_service.sessions.service import add_messages
from chatmodel_service.webhooks.outbox import queue_run_webhooks

logger = logging.getLogger(__name__)

# A run waiting for a session (if_busy=wait) that another process holds looks again at
# least this often (seconds).
LONGEST_POLL = 0.25


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
    figures: ContextFigures | None = None  # what the prompt sends (prompt_fit.py)
    # Set when the prompt cannot fit the model: recorded as the outcome, no model call.
    rejected: LLMFailure | None = None
    count_tokens: TokenCounter | None = None  # counts the reply's tokens when it is stored
    # A regenerate: the reply it answers again, superseded when the new one is stored.
    supersedes: uuid.UUID | None = None
    # The stored reply's uuid, when the caller names it before the reply exists (the
    # Responses API's stream shows the reply's item ids from its first event).
    reply_uuid: uuid.UUID | None = None
    # Keep the result on the run record (a background run's, read by GET /v1/runs/{uuid}).
    keep_result: bool = False
    # The run this one cancelled to take the session (if_busy=interrupt); its process
    # stops its call (this one's at once, another's within a third of its lease).
    interrupted: uuid.UUID | None = None
    # How long the lease was taken for; renewed every third of that while the model answers.
    lease_seconds: float = field(kw_only=True)
    # context_strategy summarize: the summary to write before the call (``summarised``).
    summary: SummaryPlan | None = field(default=None, kw_only=True)


@dataclass(frozen=True)
class FinishedRun:
    """A run's outcome as recorded: the model's, or ``interrupted`` when the run had lost
    its lease by then (and nothing was stored); its result, and its stored reply."""

    outcome: LLMOutcome
    response: LLMResponse
    message_uuid: uuid.UUID | None


# -- 1. start: claim the session, store the request's messages, fit the prompt ---------


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
    queued: uuid.UUID | None = None,
) -> PreparedRun | Replayed:
    """Claim the session for a run (or replay a finished run with the same key). With
    ``if_busy=wait``, a busy session is tried again, with growing pauses, until
    ``wait_seconds`` have passed; then the last 409 stands. With ``enqueue`` the run waits
    in the session's queue (``queue.py``; ``queued``: its record, when the caller made
    it), a background one for as long as it takes; a run that leaves the queue (it was
    cancelled) raises ``RunLeftQueue``."""
    idempotency = (idempotency_key, request_hash(body)) if idempotency_key else None
    waits = body.wait_seconds if body.if_busy in ("wait", "enqueue") else 0
    deadline = float("inf") if body.background and queued else time.monotonic() + waits
    place = None
    if body.if_busy == "enqueue":
        queued = queued or await join_queue(
            database, settings, project_id, session_uuid, body, key_name
        )
        place = Place(database, settings, queued)
    pause = 0.04
    while True:
        try:
            return await _try_start(
                database,
                gateway,
                settings,
                project_id,
                session_uuid,
                body,
                key_name,
                idempotency,
                queued,
            )
        except SessionBusy:
            if place is not None and not await place.keep():
                raise RunLeftQueue(place.run_id) from None
            left = deadline - time.monotonic()
            if left <= 0:
                if place is not None:
                    await place.give_up()
                raise
            # Woken at once by a release in this process; polls for other processes,
            # with jitter, never more than LONGEST_POLL apart.
            wait = min(pause * random.uniform(0.5, 1), left)
            await wait_for_release(project_id, session_uuid, wait)
            pause = min(pause * 2, LONGEST_POLL)


async def _try_start(
    database: Database,
    gateway: LLMGateway,
    settings: Settings,
    project_id: uuid.UUID,
    session_uuid: uuid.UUID,
    body: RunRequest,
    key_name: str | None,
    idempotency: tuple[str, str] | None,
    queued: uuid.UUID | None = None,
) -> PreparedRun | Replayed:
    async with database.transaction() as db:
        repo = SessionRepository(db)
        loaded = await require_session_locked(repo, project_id, session_uuid)
        replayed = await replay(db, loaded, *idempotency) if idempotency else None
        if replayed is None:
            return await _claim_and_fit(
                db, gateway, settings, loaded, body, key_name, idempotency, queued
            )
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
    queued: uuid.UUID | None,
) -> PreparedRun:
    """The start transaction's writes: the claim (after cancelling the run it interrupts,
    with ``if_busy=interrupt``), the request's messages, the prompt."""
    repo = SessionRepository(db)
    session = loaded.session
    stopped = await interrupt_holder(db, loaded) if body.if_busy == "interrupt" else None
    run_id = await claim_session(
        db,
        settings,
        loaded,
        stream=body.stream,
        key_name=key_name,
        idempotency=idempotency,
        stream_format="native" if body.stream or body.background else None,
        queued=queued,
        jump_queue=body.if_busy == "interrupt",
        interrupted=stopped,
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
        fitted = await fit_session_call(
            repo, gateway, settings, loaded.version, session.id, call, summarize=True
        )
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
        interrupted=stopped,
        lease_seconds=settings.run_lease_seconds,
        summary=fitted.summary,
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
            repo, gateway, settings, loaded.version, loaded.session.id, call, summarize=True
        )
    finally:
        await savepoint.rollback()


# -- 2. the model call, while the lease is renewed --------------------------------------


async def complete_run(
    database: Database,
    gateway: LLMGateway,
    prepared: PreparedRun,
    *,
    cancel_on_lost_lease: bool = False,
) -> FinishedRun:
    """Call the model for a claimed run while renewing its lease, and store its outcome
    (``finish_run``); cancelled (server shutdown), the run is recorded as interrupted.
    Every run on a session that is not streamed goes through here.
    ``cancel_on_lost_lease``: a run that loses its lease (it was cancelled from another
    process) is cancelled, its model call closed (a background run; a request's run
    answers its caller instead, once the model has)."""
    if prepared.rejected is not None:  # the prompt cannot fit: no model call
        return await finish_run(database, prepared, prepared.rejected)
    started = time.perf_counter()
    session_id = prepared.loaded.session.id
    try:
        async with keep_lease(
            database,
            prepared.lease_seconds,
            session_id,
            prepared.run_id,
            cancel_on_loss=cancel_on_lost_lease,
        ):
            prepared = await summarised(database, gateway, prepared)
            outcome = await gateway.complete(prepared.call)
    except BaseException:
        await abandon_run(database, prepared, started)
        raise
    return await finish_run(database, prepared, outcome)


async def summarised(database: Database, gateway: LLMGateway, prepared: PreparedRun) -> PreparedRun:
    """The run with its summary written and inserted in its call (``summaries.py``);
    when writing it fails, the run truncates and its figures say why. A run without a
    summary to write is returned as it is."""
    plan = prepared.summary
    if plan is None or prepared.figures is None:
        return prepared
    written = await write_summary(database, gateway, plan)
    if written.summary is None:
        figures = replace(prepared.figures, summary_error=written.error)
        return replace(prepared, figures=figures, summary=None)
    call, figures = with_summary(
        prepared.call, prepared.figures, plan.insert_at, written.summary, plan.messages_summarised
    )
    return replace(prepared, call=call, figures=figures, summary=None)


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


# -- 3. finish: the outcome, the reply and the lease's release, together ----------------


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


async def _store_outcome(
    database: Database, prepared: PreparedRun, outcome: LLMOutcome
) -> FinishedRun:
    loaded = prepared.loaded
    reply = None
    if isinstance(outcome, LLMResult):
        reply = reply_values(loaded, outcome, prepared.count_tokens)
        if prepared.reply_uuid is not None:
            reply["uuid"] = prepared.reply_uuid
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
        if prepared.idempotency_key is not None or prepared.keep_result:
            values["result"] = response.model_dump(mode="json")
        if not (held and await RunRepository(db).finish(prepared.run_id, values)):
            stopped = await RunRepository(db).cancellation(prepared.run_id)
            if stopped is not None:  # POST /v1/runs/{uuid}/cancel: it says so
                cancelled = LLMFailure(outcome.model, "cancelled", stopped, outcome.latency_ms)
                response = llm_response(loaded, prepared.run_id, cancelled, None)
                return FinishedRun(cancelled, response, None)
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
        await queue_run_webhooks(db, prepared.run_id)
    released(loaded.session)
    record_run(loaded.chat_model.name, loaded.version.number, outcome)
    return FinishedRun(outcome, response, reply["uuid"] if reply else None)


async def _free_unstored(
    database: Database, prepared: PreparedRun, outcome: LLMOutcome, error: StorageUnavailable
) -> None:
    failure = _storage_failure(outcome, error)
    session = prepared.loaded.session
    try:
        async with database.transaction() as db:
            if await SessionRepository(db).release_lease(session.id, prepared.run_id):
                await RunRepository(db).finish(prepared.run_id, outcome_values(failure))
                await queue_run_webhooks(db, prepared.run_id)
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


def unstored_run(
    prepared: PreparedRun, outcome: LLMOutcome, error: StorageUnavailable
) -> FinishedRun:
    """A run whose outcome the database could not store (``finish_run`` raised ``error``),
    as a failure to report where an answer has already begun (a stream's last event)."""
    failure = _storage_failure(outcome, error)
    response = llm_response(prepared.loaded, prepared.run_id, failure, None, prepared.figures)
    return FinishedRun(failure, response, None)


def _storage_failure(outcome: LLMOutcome, error: StorageUnavailable) -> LLMFailure:
    return LLMFailure(
        model=outcome.model,
        error_type=error.code,
        error_log=error.detail,
        latency_ms=outcome.latency_ms,
    )
