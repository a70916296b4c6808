"""Summaries of what falls out of a session's window (``context_strategy`` summarize).

When a run's window (``window.py``, as for ``truncate``, in a budget that keeps room for
the summary) drops older messages, they are sent as one system message after the system
prompt: ``Summary of the earlier conversation: ...``. The summary is stored per session
(``session_summary``) with the last ``seq`` it covers, which is always just before a cut
between units, so a call is never summarised away from its results.

* nothing newly dropped since the newest summary: it is sent again, no model call;
* newer messages dropped: the summary model (the version's ``summary_model``, else its
  model) gets the newest summary and only the messages dropped since it (at most
  ``MAX_NEW_TURNS``, the newest of them), and its answer is stored as the next summary.
  That call is made after the start transaction, while the run holds its lease, as the
  run's own call is; reads stay bounded by the window plus those messages;
* the summary call fails (error, timeout, an empty or too long answer, a summary that
  cannot be stored): the run goes on with plain truncation and reports ``summary_error``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from chatmodel_service.db import Database
from chatmodel_service.errors import storage_failure
from chatmodel_service.llm import SUMMARY_REQUEST
from chatmodel_service.llm.gateway import LLMGateway
from chatmodel_service.llm.types import LLMCall, LLMFailure
from chatmodel_service.models import SessionSummary
from chatmodel_service.sessions.summary_repository import SummaryRepository

SUMMARY_PREFIX = "Summary of the earlier conversation: "
MAX_NEW_TURNS = 256  # dropped messages one summary call reads, the newest of them
MAX_SUMMARY_TOKENS = 512  # the most room a summary takes in the window ...
SUMMARY_SHARE = 4  # ... and at most this part of the window's budget (1/4)
MESSAGE_OVERHEAD = 8  # tokens a message takes beyond its content (role, framing)
SUMMARY_PREFIX_TOKENS = 8  # about those of SUMMARY_PREFIX
SMALLEST_ROOM = 48  # a window keeping less for a summary truncates instead
DEFAULT_SUMMARY_PROMPT = (
    "You keep a running summary of a conversation between a user and an assistant. "
    "Extend the previous summary with the new turns: keep names, facts, numbers, "
    "decisions, tool results and open questions; drop small talk. Reply with the summary "
    "only, in a few short sentences."
)


def summary_reserve(allowed: int) -> int:
    """The tokens kept for the summary message in a window of ``allowed`` tokens."""
    return min(MAX_SUMMARY_TOKENS, allowed // SUMMARY_SHARE)


def summary_message(content: str) -> dict[str, Any]:
    return {"role": "system", "content": SUMMARY_PREFIX + content}


@dataclass(frozen=True)
class SentSummary:
    """A stored summary as a run sends it."""

    id: uuid.UUID
    content: str
    covers_through_seq: int
    tokens: int

    @classmethod
    def of(cls, row: SessionSummary) -> SentSummary:
        return cls(row.id, row.content, row.covers_through_seq, row.token_count)


@dataclass(frozen=True)
class SummaryPlan:
    """A summary to write before the run's call: ``previous`` (if any) extended with
    ``turns`` (OpenAI format, oldest first), to cover through ``covers_through_seq`` and
    stand in for ``messages_summarised`` messages, inserted at ``insert_at`` in the call's
    messages (after the system prompt)."""

    session_id: uuid.UUID
    model: str
    api_base: str | None
    prompt: str
    previous: SentSummary | None
    turns: list[dict[str, Any]]
    covers_through_seq: int
    messages_summarised: int
    insert_at: int
    room: int  # the most tokens the summary message may take (kept in the window)
    timeout: float

    @property
    def max_tokens(self) -> int:
        return self.room - MESSAGE_OVERHEAD - SUMMARY_PREFIX_TOKENS


def _turn_text(message: dict[str, Any]) -> str:
    role = str(message["role"])
    parts = [" ".join(str(message.get("content") or "").split())]
    if message.get("function_call"):
        call = message["function_call"]
        parts.append(f"[calls {call.get('name')}({call.get('arguments') or ''})]")
    for tool_call in message.get("tool_calls") or ():
        function = tool_call.get("function") or {}
        parts.append(f"[calls {function.get('name')}({function.get('arguments') or ''})]")
    label = f"{role} {message['name']}" if role == "function" and message.get("name") else role
    return f"{label}: {' '.join(p for p in parts if p)}"


def summary_request(plan: SummaryPlan) -> LLMCall:
    """The summary model's call: the instructions, then the previous summary and the
    new turns, one a line, after the ``SUMMARY_REQUEST`` line."""
    previous = plan.previous.content if plan.previous is not None else "(none)"
    turns = "\n".join(_turn_text(m) for m in plan.turns)
    request = f"{SUMMARY_REQUEST}\nPrevious summary:\n{previous}\n\nNew turns:\n{turns}"
    return LLMCall(
        model=plan.model,
        messages=[
            {"role": "system", "content": plan.prompt},
            {"role": "user", "content": request},
        ],
        params={"max_tokens": plan.max_tokens},
        api_base=plan.api_base,
        timeout=plan.timeout,
    )


def sending(messages: list[dict[str, Any]], at: int, content: str) -> list[dict[str, Any]]:
    """The call's messages with the summary inserted at ``at``."""
    return [*messages[:at], summary_message(content), *messages[at:]]


@dataclass(frozen=True)
class WrittenSummary:
    """A summary call's result: the summary to send (stored), or why there is none."""

    summary: SentSummary | None
    error: str | None = None


async def write_summary(
    database: Database, gateway: LLMGateway, plan: SummaryPlan
) -> WrittenSummary:
    """Ask the summary model for the next summary and store it (its own transaction:
    a summary stays useful whatever becomes of the run); never raises for the model's
    or the storage's failures, which come back as ``error``."""
    call = summary_request(plan)
    outcome = await gateway.complete(call)
    if isinstance(outcome, LLMFailure):
        return WrittenSummary(
            None, f"The summary model failed ({outcome.error_type}): {outcome.error_log}"
        )
    content = " ".join((outcome.content or "").split())
    if not content:
        return WrittenSummary(None, "The summary model answered with no text.")
    tokens = gateway.count_message_tokens(plan.model, summary_message(content))
    if tokens > plan.room:
        return WrittenSummary(
            None, f"The summary takes {tokens} tokens, more than the {plan.room} kept for it."
        )
    try:
        async with database.transaction() as db:
            row = await SummaryRepository(db).add(
                plan.session_id,
                covers_through_seq=plan.covers_through_seq,
                content=content,
                model=outcome.model or plan.model,
                token_count=tokens,
                prompt_tokens=outcome.prompt_tokens,
                completion_tokens=outcome.completion_tokens,
            )
            written = SentSummary.of(row)
    except Exception as exc:
        cause = storage_failure(exc)
        if cause is None:
            raise
        return WrittenSummary(None, f"The summary could not be stored ({cause}).")
    return WrittenSummary(written)
