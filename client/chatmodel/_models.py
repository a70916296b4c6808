"""What the server sends back, as pydantic models.

Fields a newer server adds are kept (``model_extra``) rather than rejected, so an older
client keeps working.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Self
from uuid import UUID

from pydantic import BaseModel, BeforeValidator, ConfigDict, model_validator


class _ServerModel(BaseModel):
    model_config = ConfigDict(extra="allow", defer_build=True)


def _uuid_text(value: object) -> str:
    """A uuid as its canonical text; anything that is not a uuid is refused."""
    return str(value if isinstance(value, UUID) else UUID(str(value)))


# A version's uuid is read as text, as promptmodel's ``version_uuid`` is (it is saved and
# compared as a string), checked and written the canonical way.
UUIDText = Annotated[str, BeforeValidator(_uuid_text)]


def _parsed_arguments(arguments: str) -> dict[str, Any] | None:
    try:
        value = json.loads(arguments) if arguments else {}
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


class FunctionCall(_ServerModel):
    """A call the model asked for: ``arguments`` is its JSON text, ``args`` that text parsed
    (``None`` when the model produced something that is not a JSON object)."""

    name: str
    arguments: str = ""
    args: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _parse_arguments(self) -> Self:
        if self.args is None and "args" not in self.model_fields_set:
            self.args = _parsed_arguments(self.arguments)
        return self


class ToolCall(_ServerModel):
    id: str
    type: str = "function"
    function: FunctionCall


class FunctionCallDelta(_ServerModel):
    """A piece of a streamed function call: the name comes first, then argument text."""

    name: str | None = None
    arguments: str = ""


class ToolCallDelta(_ServerModel):
    """A piece of a streamed tool call; ``index`` says which call it continues."""

    index: int
    id: str | None = None
    type: str | None = None
    function: FunctionCallDelta


class Usage(_ServerModel):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None


class Attempt(_ServerModel):
    """One try of the model call behind a run: the server's retries and fallbacks each add
    one. ``outcome`` is ``"succeeded"`` or that try's error type (``rate_limited``, ...);
    ``provider_status`` is the provider's HTTP status, when it answered."""

    model: str
    outcome: str
    latency_ms: int
    provider_status: int | None = None


class ResponseDetail(_ServerModel):
    """Which chat model, version and session answered, and the stored reply's uuid
    (``message_uuid``; ``None`` when the run failed: no reply was stored).

    Also read as promptmodel's ``pm_detail`` (``res.pm_detail is res.detail``): its
    ``name``, ``version``, ``version_uuid`` and ``model`` are these, and its ``log_uuid``
    is the stored reply's uuid as text.
    """

    name: str
    version: int
    version_uuid: UUIDText
    model: str
    session_uuid: UUID
    message_uuid: UUID | None = None
    run_uuid: UUID

    @property
    def log_uuid(self) -> str | None:
        """promptmodel's name for the stored reply's uuid: ``message_uuid`` as text."""
        return None if self.message_uuid is None else str(self.message_uuid)


class _SameContent(_ServerModel):
    content: str | None = None
    raw_output: str | None = None

    @model_validator(mode="after")
    def _content_under_both_names(self) -> Self:
        if self.content is None:
            self.content = self.raw_output
        elif self.raw_output is None:
            self.raw_output = self.content
        return self


class LLMResponse(_SameContent):
    """The result of ``run``/``arun``. Failures are reported here, never raised:
    ``error`` is true, ``error_type`` names the failure and ``error_log`` explains it.
    ``attempts`` lists each try of the model call, in order (``detail.model`` answered).

    How the prompt was fitted to the model's input limit (``None`` when the server did not
    get that far, e.g. ``session_busy``, or did not say):

    * ``messages_sent``: the session's messages in the prompt (the system prompt not
      counted);
    * ``messages_dropped``: older messages left out so the prompt fits (regenerated,
      superseded replies not counted: they are never sent);
    * ``prompt_tokens_estimate``: the prompt's tokens as the server counted them before the
      call (system prompt, messages, function or tool schemas); ``usage.prompt_tokens`` is
      the provider's own count;
    * ``messages_summarised``, ``summary_id``, ``summary_tokens`` (a version whose
      ``context_strategy`` is ``summarize``): how many of the dropped messages the summary
      sent in their place stands in for, which stored summary, and its tokens; or
      ``summary_error``: why none was sent (the run truncated instead).
    """

    function_call: FunctionCall | None = None
    tool_calls: list[ToolCall] | None = None
    finish_reason: str | None = None
    usage: Usage | None = None
    cost: float | None = None
    latency_ms: int | None = None
    error: bool = False
    error_type: str | None = None
    error_log: str | None = None
    api_response: dict[str, Any] | None = None
    detail: ResponseDetail | None = None
    attempts: list[Attempt] | None = None
    messages_sent: int | None = None
    messages_dropped: int | None = None
    prompt_tokens_estimate: int | None = None
    messages_summarised: int | None = None
    summary_id: UUID | None = None
    summary_tokens: int | None = None
    summary_error: str | None = None

    @property
    def pm_detail(self) -> ResponseDetail | None:
        """promptmodel's name for :attr:`detail` (with ``log_uuid``)."""
        return self.detail


class AssembledMessage(_ServerModel):
    """The complete reply, as stored, on a stream's last chunk."""

    role: str = "assistant"
    content: str | None = None
    function_call: FunctionCall | None = None
    tool_calls: list[ToolCall] | None = None


class LLMStreamResponse(_SameContent):
    """One chunk of ``run(stream=True)``: ``content`` (and ``raw_output``) and the call
    fields are deltas. The last chunk has ``done=True`` and either the assembled ``message``
    with ``usage``, ``finish_reason``, ``detail`` and ``attempts``, or ``error=True``; it also
    carries ``messages_sent``, ``messages_dropped`` and ``prompt_tokens_estimate``, as
    :class:`LLMResponse` does (``None`` on the other chunks)."""

    function_call: FunctionCallDelta | None = None
    tool_calls: list[ToolCallDelta] | None = None
    done: bool = False
    message: AssembledMessage | None = None
    finish_reason: str | None = None
    usage: Usage | None = None
    cost: float | None = None
    latency_ms: int | None = None
    error: bool = False
    error_type: str | None = None
    error_log: str | None = None
    detail: ResponseDetail | None = None
    attempts: list[Attempt] | None = None
    messages_sent: int | None = None
    messages_dropped: int | None = None
    prompt_tokens_estimate: int | None = None
    messages_summarised: int | None = None
    summary_id: UUID | None = None
    summary_tokens: int | None = None
    summary_error: str | None = None

    @property
    def pm_detail(self) -> ResponseDetail | None:
        """promptmodel's name for :attr:`detail` (with ``log_uuid``): set on the last
        chunk only, where the stored reply's uuid is known."""
        return self.detail


class ChatModelConfig(_ServerModel):
    """What ``get_config`` returns: the version's prompt and, for a session, its messages
    in OpenAI chat format."""

    name: str
    system_prompt: str
    model: str
    version: int
    version_uuid: UUIDText
    version_detail: dict[str, Any]
    message_logs: list[dict[str, Any]]
    session_uuid: UUID | None = None


class Message(_ServerModel):
    """A stored message of a session; assistant replies also carry the run's figures.
    ``superseded`` marks a reply that was regenerated: kept in the history, never sent to
    the model again; ``deleted`` a message deleted as a conversation item through the
    Conversations API (superseded too)."""

    uuid: UUID
    seq: int
    role: str
    content: str | None = None
    name: str | None = None
    function_call: FunctionCall | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    metadata: dict[str, Any] | None = None
    created_at: datetime
    run_uuid: UUID | None = None
    model: str | None = None
    usage: Usage | None = None
    cost: float | None = None
    latency_ms: int | None = None
    finish_reason: str | None = None
    superseded: bool = False
    deleted: bool = False


class MessagePage(_ServerModel):
    """What ``list_messages`` returns: a page of the session's messages, ``data`` oldest
    first whichever way the pages are read. ``has_more`` says more lie beyond this page in
    reading order; follow ``next_after`` (reading forwards) or ``next_before`` (reading
    backwards), the one that is set."""

    data: list[Message]
    has_more: bool
    next_after: int | None = None
    next_before: int | None = None


class Session(_ServerModel):
    """A stored session, as ``fork`` returns it: its pinned version, metadata and template
    variables; on a fork, ``parent_session_uuid`` (the session it was copied from, which
    may since be deleted) and ``parent_seq`` (the last message copied)."""

    uuid: UUID
    chat_model: str
    version: int
    version_uuid: UUIDText
    model: str
    metadata: dict[str, Any]
    created_at: datetime
    variables: dict[str, str] | None = None
    parent_session_uuid: UUID | None = None
    parent_seq: int | None = None


class Feedback(_ServerModel):
    """A named score of a session (``message_uuid`` ``None``) or of one of its messages, as
    ``log_score`` and ``log_score_to_session`` return it. ``kind`` is ``"boolean"``,
    ``"number"`` or ``"category"`` (read as text, as a newer server may add one);
    ``value`` is as given (a whole number comes back as an ``int``). Giving ``id`` again
    updates this feedback."""

    id: UUID
    session_uuid: UUID
    message_uuid: UUID | None = None
    name: str
    kind: str
    value: bool | int | float | str
    comment: str | None = None
    by: str | None = None
    key_name: str | None = None
    created_at: datetime
    updated_at: datetime


class RunState(_ServerModel):
    """A run as ``GET /v1/runs/{uuid}`` shows it (``RunHandle.status()``, ``cancel()``).

    ``status`` is ``"queued"`` or ``"running"`` while it goes on (``queue_position``: its
    place in the server's queue, when it says), then ``"succeeded"``, ``"failed"`` or
    ``"cancelled"``; it is read as text, so a status a newer server adds does not make the
    answer unreadable (:attr:`finished` says whether the run has ended). ``response`` is the
    run's ``LLMResponse`` once it has ended (``error=True`` for a failed or cancelled run),
    ``None`` while it goes on.
    """

    uuid: UUID
    session_uuid: UUID
    status: str
    queue_position: int | None = None
    version: int | None = None
    version_uuid: UUIDText | None = None
    stream: bool | None = None
    model: str | None = None
    error_type: str | None = None
    error_log: str | None = None
    latency_ms: int | None = None
    usage: Usage | None = None
    cost: float | None = None
    message_uuid: UUID | None = None
    created_at: datetime
    finished_at: datetime | None = None
    key_name: str | None = None
    attempts: list[Attempt] | None = None
    idempotency_key: str | None = None
    messages_sent: int | None = None
    messages_dropped: int | None = None
    prompt_tokens_estimate: int | None = None
    messages_summarised: int | None = None
    summary_id: UUID | None = None
    summary_tokens: int | None = None
    summary_error: str | None = None
    response: LLMResponse | None = None

    @property
    def finished(self) -> bool:
        """Whether the run has ended (any status but ``queued`` and ``running``)."""
        return self.status not in RUN_GOING_ON


# A run's statuses while it goes on; every other one is an end.
RUN_GOING_ON = frozenset({"queued", "running"})
