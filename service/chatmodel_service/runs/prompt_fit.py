"""Fit a call's prompt to its model's input limit: the budget, then the newest messages
that fit it (``window.py`` picks them; this module reads and counts).

The budget, in tokens (LiteLLM's figures come through the gateway, never fetched):

    input limit    the version's ``context_window``; else ``max_input_tokens`` from
                   LiteLLM's model map; else ``CHATMODEL_DEFAULT_CONTEXT_WINDOW``
    reply reserve  the call's ``max_tokens``; else the smaller of the model's
                   ``max_output_tokens`` and ``CHATMODEL_DEFAULT_REPLY_RESERVE``
    overhead       the function/tool schemas, and the tokens that prime the reply
    allowed        input limit - reply reserve - overhead

The system prompt (with an OpenAI-style request's own leading system messages) and the
messages sent must fit in ``allowed``. The prompt's estimate is that sum plus the
overhead, so it never exceeds input limit - reply reserve.

A session's run reads its messages newest first, a page at a time, on the
(session_id, seq) index, and stops once the window built on what it read is final (see
``window.py``): older messages could not be sent anyway, and what must be sent (from the
newest user message on) begins among those read, or cannot fit. Orphan results take
their tokens' room, so they never make a run read on either. How many older messages it
left out follows from their ``seq`` less the superseded replies among them (a partial
index); so a run reads its window, not its history. A message's token count is stored
with it; one stored without a count (before migration 0008, or added without a counter)
is counted when first read, and the count is kept.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from chatmodel_service.config import Settings
from chatmodel_service.llm.gateway import LLMGateway
from chatmodel_service.llm.types import LLMCall, LLMFailure
from chatmodel_service.models import ChatModelVersion, SessionMessage
from chatmodel_service.runs.summaries import (
    DEFAULT_SUMMARY_PROMPT,
    MAX_NEW_TURNS,
    SMALLEST_ROOM,
    SentSummary,
    SummaryPlan,
    sending,
    summary_reserve,
)
from chatmodel_service.runs.window import (
    STRATEGIES,
    Strategy,
    Window,
    WindowMessage,
    build_window,
    units,
)
from chatmodel_service.sessions.messages import message_to_openai
from chatmodel_service.sessions.repository import SessionRepository
from chatmodel_service.sessions.summary_repository import SummaryRepository

FIRST_PAGE = 64  # messages read by a run's first page; each next page doubles, up to:
MAX_PAGE = 1024


@dataclass(frozen=True)
class ContextFigures:
    """What a call sent, reported on its LLMResponse and stored on its run record."""

    messages_sent: int
    messages_dropped: int
    prompt_tokens_estimate: int | None  # None: nothing was sent
    # context_strategy summarize (``summaries.py``): how many of the dropped messages the
    # summary sent stands in for, which summary and its tokens; or why none was sent.
    messages_summarised: int | None = None
    summary_id: uuid.UUID | None = None
    summary_tokens: int | None = None
    summary_error: str | None = None

    def columns(self) -> dict[str, int | str | uuid.UUID | None]:
        return {
            "messages_sent": self.messages_sent,
            "messages_dropped": self.messages_dropped,
            "prompt_tokens_estimate": self.prompt_tokens_estimate,
            "messages_summarised": self.messages_summarised,
            "summary_id": self.summary_id,
            "summary_tokens": self.summary_tokens,
            "summary_error": self.summary_error,
        }


@dataclass(frozen=True)
class PromptBudget:
    input_limit: int
    reply_reserve: int
    overhead: int

    @property
    def allowed(self) -> int:
        """Tokens for the system prompt and the messages."""
        return self.input_limit - self.reply_reserve - self.overhead

    def explained(self) -> str:
        return (
            f"the model takes {self.input_limit} input tokens, {self.reply_reserve} are kept "
            f"for the reply and {self.overhead} go to function/tool schemas"
        )


@dataclass(frozen=True)
class FittedCall:
    """The call with the messages that fit, and its figures; or, when even the required
    messages do not fit (or the strategy is ``fail`` and the history does not), the
    ``failure`` to record instead of calling the model (``call`` then has no messages
    beyond the system prompt)."""

    call: LLMCall
    figures: ContextFigures
    failure: LLMFailure | None = None
    # context_strategy summarize: the summary to write (and insert) before the call.
    summary: SummaryPlan | None = None


def prompt_budget(
    gateway: LLMGateway, settings: Settings, version: ChatModelVersion, call: LLMCall
) -> PromptBudget:
    limits = gateway.model_limits(call.model, call.api_base)
    input_limit = (
        version.context_window or limits.max_input_tokens or settings.default_context_window
    )
    max_tokens = call.params.get("max_tokens")
    if isinstance(max_tokens, int) and max_tokens > 0:
        reserve = max_tokens
    else:
        reserve = min(settings.default_reply_reserve, limits.max_output_tokens or input_limit)
    overhead = gateway.count_schema_tokens(call.model, call.functions, call.tools)
    return PromptBudget(input_limit, reserve, overhead)


def _fixed_tokens(gateway: LLMGateway, call: LLMCall) -> int:
    """The tokens of what the call carries before the conversation: the system prompt."""
    return sum(gateway.count_message_tokens(call.model, m) for m in call.messages)


def count_missing(gateway: LLMGateway, model: str, rows: Sequence[SessionMessage]) -> None:
    """Count the messages stored without a token count; the count is written with the
    caller's transaction (so each message is counted once)."""
    for row in rows:
        if row.token_count is None:
            row.token_count = gateway.count_message_tokens(model, message_to_openai(row))


def _refusal(call: LLMCall, window: Window, budget: PromptBudget) -> LLMFailure:
    fit = f"only {window.allowed} fit" if window.allowed > 0 else "nothing fits"
    needed = f"at least {window.needed}" if window.at_least else str(window.needed)
    if window.history_too_long:
        log = (
            f"The session's history needs {needed} tokens with the system prompt, but {fit} "
            f"({budget.explained()}), and this version's context_strategy is 'fail'. "
            "Nothing was sent. Use context_strategy 'truncate' or 'last_n' to send only "
            "the newest messages, or continue in a new session."
        )
    else:
        what = (
            f"The session has no user message; its newest message (with the call and "
            f"results it belongs with) needs {needed}"
            if window.no_user_message
            else f"The newest user message and what follows it need {needed}"
        )
        log = (
            f"{what} tokens with the system prompt, but {fit} ({budget.explained()}). "
            "Nothing was sent. Shorten that message or the system prompt, set a lower "
            "max_tokens, or use a model with a larger input limit (a version's "
            "context_window sets it for models LiteLLM does not know)."
        )
    return LLMFailure(
        model=call.model, error_type="context_window_exceeded", error_log=log, latency_ms=0
    )


def _fitted(
    call: LLMCall,
    conversation: Sequence[dict[str, Any]],
    window: Window,
    budget: PromptBudget,
    *,
    earlier: int = 0,
) -> FittedCall:
    """``conversation`` is the newest part of the history (``earlier`` older messages
    were not read) and ``window`` was built on it."""
    if not window.fits:
        figures = ContextFigures(0, earlier + len(conversation), None)
        return FittedCall(call, figures, _refusal(call, window, budget))
    sent = window.sent_of(conversation)
    figures = ContextFigures(len(sent), earlier + window.dropped, window.tokens + budget.overhead)
    return FittedCall(replace(call, messages=[*call.messages, *sent]), figures)


def fit_conversation(
    gateway: LLMGateway,
    settings: Settings,
    version: ChatModelVersion,
    call: LLMCall,
    conversation: Sequence[tuple[dict[str, Any], int]],
    *,
    strategy: Strategy | None = None,
) -> FittedCall:
    """Fit a conversation held in memory ((OpenAI-format message, tokens), oldest first)
    after ``call``'s system prompt (``strategy``: as for ``fit_session_call``)."""
    budget = prompt_budget(gateway, settings, version, call)
    entries = [WindowMessage.of(message, tokens) for message, tokens in conversation]
    window = build_window(
        _fixed_tokens(gateway, call),
        entries,
        budget.allowed,
        strategy or _strategy(version),
        version.context_last_n,
    )
    return _fitted(call, [message for message, _ in conversation], window, budget)


def _strategy(version: ChatModelVersion) -> Strategy:
    return next((s for s in STRATEGIES if s == version.context_strategy), "truncate")


class _Tail:
    """The newest of a session's prompt messages read so far, oldest first."""

    def __init__(
        self, repo: SessionRepository, gateway: LLMGateway, model: str, session_id: uuid.UUID
    ) -> None:
        self.repo, self.gateway, self.model, self.session_id = repo, gateway, model, session_id
        self.rows: list[SessionMessage] = []
        self.conversation: list[dict[str, Any]] = []  # the rows in OpenAI format
        self.entries: list[WindowMessage] = []  # and as the window builder sees them
        self.complete = False  # the oldest message was read
        self._page = FIRST_PAGE
        self._no_user_before = False  # no user message is older than those read

    async def read_older(self) -> None:
        before = self.rows[0].seq if self.rows else None
        page = await self.repo.prompt_tail(self.session_id, before, self._page)
        count_missing(self.gateway, self.model, page)
        older = list(reversed(page))
        self.rows[:0] = older
        messages = [message_to_openai(row) for row in older]
        self.conversation[:0] = messages
        self.entries[:0] = [
            WindowMessage.of(message, row.token_count or 0)
            for message, row in zip(messages, older, strict=True)
        ]
        self.complete = len(page) < self._page
        self._page = min(self._page * 2, MAX_PAGE)

    async def window(
        self, fixed: int, allowed: int, strategy: Strategy, last_n: int | None
    ) -> Window:
        """The window of what was read; ``final`` when older messages cannot change it."""
        if self.complete:
            return build_window(fixed, self.entries, allowed, strategy, last_n)
        window = build_window(
            fixed,
            self.entries,
            allowed,
            strategy,
            last_n,
            older=True,
            user_before=not self._no_user_before,
        )
        if not window.final or self._no_user_before or window.fits:
            return window
        if any(entry.role == "user" for entry in self.entries):
            return window
        # A refusal because the newest user message would be older than what was read:
        # only if there is one (else what must be sent is the newest unit).
        if await self.repo.has_user_message_before(self.session_id, self.rows[0].seq):
            return window
        self._no_user_before = True
        return build_window(
            fixed, self.entries, allowed, strategy, last_n, older=True, user_before=False
        )

    async def earlier(self) -> int:
        """How many prompt messages are older than those read."""
        if self.complete or not self.rows:
            return 0
        return await self.repo.count_prompt_messages_before(self.session_id, self.rows[0].seq)


async def fit_session_call(
    repo: SessionRepository,
    gateway: LLMGateway,
    settings: Settings,
    version: ChatModelVersion,
    session_id: uuid.UUID,
    call: LLMCall,
    *,
    strategy: Strategy | None = None,
    summarize: bool = False,
) -> FittedCall:
    """Fit the session's newest messages after ``call``'s system prompt, reading only
    the tail it can send (see the module's doc). ``strategy`` replaces the version's
    (the Responses API's ``truncation`` chooses it per call). ``summarize``: a version
    whose strategy is ``summarize`` sends a summary of what its window drops (its
    caller writes the ``summary`` planned, ``summaries.py``); elsewhere it truncates."""
    budget = prompt_budget(gateway, settings, version, call)
    fixed = _fixed_tokens(gateway, call)
    summarizing = summarize and strategy is None and version.context_strategy == "summarize"
    strategy = strategy or _strategy(version)
    last_n = version.context_last_n if strategy == "last_n" else None
    tail = _Tail(repo, gateway, call.model, session_id)
    await tail.read_older()
    window = await tail.window(fixed, budget.allowed, strategy, last_n)
    while not window.final:
        await tail.read_older()
        window = await tail.window(fixed, budget.allowed, strategy, last_n)
    earlier = await tail.earlier()
    if summarizing and window.fits and earlier + window.start > 0:
        return await _summarised(repo, version, call, budget, fixed, tail, session_id)
    return _fitted(call, tail.conversation, window, budget, earlier=earlier)


async def _final_window(tail: _Tail, fixed: int, allowed: int) -> Window:
    window = await tail.window(fixed, allowed, "truncate", None)
    while not window.final:
        await tail.read_older()
        window = await tail.window(fixed, allowed, "truncate", None)
    return window


async def _summarised(
    repo: SessionRepository,
    version: ChatModelVersion,
    call: LLMCall,
    budget: PromptBudget,
    fixed: int,
    tail: _Tail,
    session_id: uuid.UUID,
) -> FittedCall:
    """A window that drops older messages, with the summary that stands in for them: the
    stored one when it covers them, else a plan for the next (``summaries.py``). The
    window is built in a budget that keeps room for the summary; when that leaves no
    room, it is the plain truncating window and ``summary_error`` says why."""
    room = summary_reserve(budget.allowed)
    window = await _final_window(tail, fixed, budget.allowed - room)
    if room < SMALLEST_ROOM or not window.fits:
        full = await _final_window(tail, fixed, budget.allowed)
        fitted = _fitted(call, tail.conversation, full, budget, earlier=await tail.earlier())
        error = "The window has no room for a summary of the older messages; they were dropped."
        return replace(fitted, figures=replace(fitted.figures, summary_error=error))
    earlier = await tail.earlier()
    start = window.start
    fitted = _fitted(call, tail.conversation, window, budget, earlier=earlier)
    boundary = tail.rows[start - 1].seq if start > 0 else tail.rows[0].seq - 1
    summaries = SummaryRepository(repo.session)
    newest = await summaries.newest(session_id)
    previous = SentSummary.of(newest) if newest is not None else None
    at = len(call.messages)
    if previous is not None and previous.covers_through_seq > boundary:
        # It covers some of what the window would send (the window shrank): send the
        # messages after it, if it ends between units; else summarise afresh.
        after = next(
            (i for i, row in enumerate(tail.rows) if row.seq > previous.covers_through_seq),
            None,
        )
        if after is not None and after in units(tail.entries, older=not tail.complete).cuts:
            shifted = build_window(fixed, tail.entries[after:], budget.allowed - room)
            rest = tail.conversation[after:]
            fitted = _fitted(call, rest, shifted, budget, earlier=earlier + after)
            start, boundary = after, previous.covers_through_seq
        else:
            previous = None
    summarised = earlier + start
    if previous is not None and previous.covers_through_seq == boundary:
        sent, figures = with_summary(fitted.call, fitted.figures, at, previous, summarised)
        return replace(fitted, call=sent, figures=figures)
    covered = previous.covers_through_seq if previous is not None else 0
    if tail.complete or tail.rows[0].seq <= covered + 1:  # all of them were read
        rows = [row for row in tail.rows[:start] if row.seq > covered][-MAX_NEW_TURNS:]
    else:
        rows = await summaries.dropped_between(session_id, covered, boundary, MAX_NEW_TURNS)
    plan = SummaryPlan(
        session_id=session_id,
        model=version.summary_model or version.model,
        api_base=version.api_base,
        prompt=version.summary_prompt or DEFAULT_SUMMARY_PROMPT,
        previous=previous,
        turns=[message_to_openai(row) for row in rows],
        covers_through_seq=boundary,
        messages_summarised=summarised,
        insert_at=at,
        room=room,
        timeout=call.timeout,
    )
    return replace(fitted, summary=plan)


def with_summary(
    call: LLMCall, figures: ContextFigures, at: int, summary: SentSummary, summarised: int
) -> tuple[LLMCall, ContextFigures]:
    """The call with ``summary`` inserted after its system prompt (``at``), and its
    figures saying so."""
    sent = replace(call, messages=sending(call.messages, at, summary.content))
    return sent, replace(
        figures,
        prompt_tokens_estimate=(figures.prompt_tokens_estimate or 0) + summary.tokens,
        messages_summarised=summarised,
        summary_id=summary.id,
        summary_tokens=summary.tokens,
    )
