"""Run records outside a session's run: recording a call made without a session (the
OpenAI-compatible API's stateless calls), a call its client made itself (promptmodel's
SDK calls the model with its own LiteLLM and reports the reply), and listing a session's
runs.

A session's run writes its record in its start and finish phases (``service.py``); a call
without a session holds nothing while the model answers and is recorded once, at the end.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from chatmodel_service.db import Database
from chatmodel_service.llm.types import LLMOutcome, LLMResult, TokenCounter
from chatmodel_service.models import ChatRun
from chatmodel_service.runs.outcomes import outcome_values, reply_values
from chatmodel_service.runs.prompt_fit import ContextFigures
from chatmodel_service.runs.repository import RunRepository
from chatmodel_service.runs.schemas import AttemptOut, RunList, RunOut
from chatmodel_service.sessions.cursor import decode_cursor, encode_cursor
from chatmodel_service.sessions.repository import LoadedSession, SessionRepository
from chatmodel_service.sessions.schemas import UsageOut
from chatmodel_service.sessions.service import require_session


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


async def record_sessionless_run(
    database: Database,
    version_id: uuid.UUID,
    outcome: LLMOutcome,
    *,
    stream: bool,
    run_id: uuid.UUID | None,
    key_name: str | None,
    figures: ContextFigures | None,
) -> None:
    """Store the finished run record of a call of ``version_id`` made without a session,
    in a transaction of its own."""
    run = run_record(
        None,
        version_id,
        outcome,
        stream=stream,
        run_id=run_id,
        key_name=key_name,
        figures=figures,
    )
    async with database.transaction() as db:
        await RunRepository(db).record(run, None)


async def record_client_run(
    db: AsyncSession,
    loaded: LoadedSession,
    outcome: LLMOutcome,
    *,
    reply_uuid: uuid.UUID | None,
    key_name: str | None,
    count_tokens: TokenCounter | None,
) -> uuid.UUID:
    """Store, in the caller's transaction, a run of the session's version that its client
    made itself and reported (model, usage and latency as the client measured them) and,
    if it succeeded, its reply as the session's next message (``reply_uuid``: the
    client's id for it). Returns the run's uuid."""
    run = run_record(loaded.session.id, loaded.version.id, outcome, stream=False, key_name=key_name)
    reply = None
    if isinstance(outcome, LLMResult):
        reply = reply_values(loaded, outcome, count_tokens)
        if reply_uuid is not None:
            reply["uuid"] = reply_uuid
    await RunRepository(db).record(run, reply)
    return run.id


def run_out(
    run: ChatRun, session_uuid: uuid.UUID, number: int, message_uuid: uuid.UUID | None
) -> RunOut:
    """A run of the session known by ``session_uuid``, whose reply is ``message_uuid``."""
    usage = None
    if run.prompt_tokens is not None or run.completion_tokens is not None:
        usage = UsageOut.of(run.prompt_tokens, run.completion_tokens)
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
        messages_summarised=run.messages_summarised,
        summary_id=run.summary_id,
        summary_tokens=run.summary_tokens,
        summary_error=run.summary_error,
    )


async def list_runs(
    db: AsyncSession,
    project_id: uuid.UUID,
    session_uuid: uuid.UUID,
    *,
    limit: int | None = None,
    cursor: str | None = None,
) -> RunList:
    """The session's runs, oldest first: all of them, or ``limit`` of them after
    ``cursor`` (a page's ``next_cursor``: the (created_at, id) of its last run)."""
    after = decode_cursor(cursor) if cursor is not None else None
    loaded = await require_session(SessionRepository(db), project_id, session_uuid)
    rows = await RunRepository(db).list_for_session(
        loaded.session.id, after=after, limit=limit + 1 if limit is not None else None
    )
    more = limit is not None and len(rows) > limit
    rows = rows[:limit]
    last = rows[-1][0] if more else None
    return RunList(
        data=[run_out(run, session_uuid, number, message) for run, number, message in rows],
        next_cursor=encode_cursor(last.created_at, last.id) if last is not None else None,
    )
