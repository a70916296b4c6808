"""Idempotency-Key replay: a repeated run request answered from the first one's run.

A run started with an Idempotency-Key records the key and a hash of the request body; its
finished result is stored with it. A repeat with the same key and body gets that result
(or, when the first attempt still runs, 409 ``run_in_progress``); one with another body is
a 422 ``idempotency_key_reused``. Keys are unique per session.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from chatmodel_service.errors import IdempotencyKeyReused, RunInProgress
from chatmodel_service.llm.types import LLMFailure
from chatmodel_service.models import ChatRun
from chatmodel_service.models.base import utcnow
from chatmodel_service.runs.lease import give_up, live_lease_left, retry_after
from chatmodel_service.runs.outcomes import interrupted, llm_response
from chatmodel_service.runs.repository import RunRepository
from chatmodel_service.runs.schemas import LLMResponse, RunRequest
from chatmodel_service.sessions.repository import LoadedSession, SessionRepository


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


async def replay(db: AsyncSession, loaded: LoadedSession, key: str, digest: str) -> Replayed | None:
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
        left = live_lease_left(session, utcnow())
        if session.lease_run_id == existing.id and left is not None:
            raise RunInProgress(
                "The first request with this Idempotency-Key is still running; retry later "
                "to get its result.",
                retry_after=retry_after(left),
            )
        await give_up(db, existing.id)
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
