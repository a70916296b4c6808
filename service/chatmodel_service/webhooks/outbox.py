"""The outbox: a finished run's webhook deliveries, written in the run's own transaction.

``queue_run_webhooks`` is called by the run engine wherever a session's run is finished
(its outcome stored, cancelled, or given up as interrupted), inside that transaction: the
deliveries commit with the outcome or not at all, so a server that dies right after still
has them to send (the next start does), and no event is sent for an outcome that was
rolled back. A project without endpoints pays one indexed query.

When this process commits deliveries, its delivery workers are woken at once
(``on_queued``) rather than at their next poll.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from chatmodel_service.models.base import utcnow
from chatmodel_service.webhooks.repository import FinishedRun, OutboxRepository

RESPONSE_ID_PREFIX = "resp_"  # a Responses API run's id: resp_<run uuid hex>
_WAKE_REGISTERED = "chatmodel_webhooks_wake"

# The delivery workers of this process, each woken by a call (thread-safe: apps under
# test serve from threads of their own). Like ``runs.lease``'s waiters, a registry of
# the process: a commit knows nothing of which app's transaction it was.
_workers: set[Callable[[], None]] = set()


def on_queued(wake: Callable[[], None]) -> Callable[[], None]:
    """Call ``wake`` whenever this process commits new deliveries; returns the undo."""
    _workers.add(wake)
    return lambda: _workers.discard(wake)


def _wake_workers(session: Session) -> None:
    session.info.pop(_WAKE_REGISTERED, None)
    for wake in list(_workers):
        wake()


def event_types(finished: FinishedRun) -> list[str]:
    """The events a finished run is told as: ``run.<outcome>``, and for a Responses API
    run ``response.<status>`` too (``incomplete``: it stopped at its token limit)."""
    run = finished.run
    if run.status == "succeeded":
        outcome = "completed"
    elif run.status == "cancelled":
        outcome = "cancelled"
    else:
        outcome = "failed"  # interrupted runs too
    types = [f"run.{outcome}"]
    if run.responses_request is not None:
        incomplete = outcome == "completed" and finished.finish_reason == "length"
        types.append("response.incomplete" if incomplete else f"response.{outcome}")
    return types


def event_payload(event_type: str, finished: FinishedRun) -> dict[str, Any]:
    """The body of one event (Standard Webhooks' ``type``, ``timestamp``, ``data``)."""
    run = finished.run
    at = run.finished_at or utcnow()
    usage = None
    if run.prompt_tokens is not None or run.completion_tokens is not None:
        prompt, completion = run.prompt_tokens or 0, run.completion_tokens or 0
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
    responses = run.responses_request is not None
    return {
        "type": event_type,
        "timestamp": at.isoformat().replace("+00:00", "Z"),
        "data": {
            "run_uuid": str(run.id),
            "session_uuid": str(finished.session_uuid),
            "chat_model": finished.chat_model,
            "version": finished.version,
            "status": run.status,
            "error_type": run.error_type,
            "finish_reason": finished.finish_reason,
            "usage": usage,
            "cost": run.cost,
            "latency_ms": run.latency_ms,
            "response_id": f"{RESPONSE_ID_PREFIX}{run.id.hex}" if responses else None,
        },
    }


async def queue_run_webhooks(db: AsyncSession, run_id: uuid.UUID) -> None:
    """Insert a delivery for each endpoint of the run's project that wants one of the
    finished run's events, in the caller's transaction (a run still running, or one
    without a session, is told of nothing)."""
    outbox = OutboxRepository(db)
    endpoints = await outbox.endpoints_of_run(run_id)
    if not endpoints:
        return
    finished = await outbox.finished_run(run_id)
    if finished is None or finished.run.status == "running":
        return
    now = utcnow()
    payloads = {kind: event_payload(kind, finished) for kind in event_types(finished)}
    rows = [
        {
            "id": uuid.uuid4(),
            "endpoint_id": endpoint_id,
            "event_type": kind,
            "run_id": run_id,
            "payload": payload,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for endpoint_id, wanted in endpoints
        for kind, payload in payloads.items()
        if kind in wanted
    ]
    if not rows:
        return
    await outbox.add_deliveries(rows)
    wake_after_commit(db)


def wake_after_commit(db: AsyncSession) -> None:
    """Wake this process's delivery workers once ``db``'s transaction has committed."""
    if not db.info.get(_WAKE_REGISTERED):
        db.info[_WAKE_REGISTERED] = True
        event.listen(db.sync_session, "after_commit", _wake_workers, once=True)
