"""The run contract: RunRequest in, LLMResponse out (seed 004's fields)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from chatmodel_service.chat_models.schemas import (
    FunctionCallChoice,
    FunctionDefinition,
    ModelParams,
    ToolChoice,
    ToolDefinition,
    VariableValues,
    VersionCreate,
)
from chatmodel_service.chat_models.templates import MAX_VARIABLES
from chatmodel_service.sessions.schemas import MessageIn, UsageOut

MESSAGES_SENT = "The session's messages in the prompt (the system prompt not counted)."
MESSAGES_DROPPED = (
    "The session's older messages left out because the prompt had to fit the model's "
    "input limit (superseded replies not counted: they are never sent)."
)
MESSAGES_SUMMARISED = (
    "context_strategy summarize: how many of the dropped messages the summary sent in "
    "their place stands in for (null: no summary was sent)."
)
SUMMARY_ID = "The summary sent (see GET /v1/sessions/{uuid}/summaries)."
SUMMARY_TOKENS = "The summary message's tokens, part of prompt_tokens_estimate."
SUMMARY_ERROR = (
    "Why no summary was sent though messages were dropped (the summary model failed, or "
    "the window has no room for one): the run truncated instead."
)
PROMPT_TOKENS_ESTIMATE = (
    "The prompt's tokens as counted before the call: system prompt, messages, function or "
    "tool schemas. `usage.prompt_tokens` is the provider's own count."
)


class RunOptions(BaseModel):
    """What a caller may set for one model call on top of the version's settings."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    functions: list[FunctionDefinition] | None = Field(
        default=None, max_length=128, description="Overrides the version's default functions."
    )
    tools: list[ToolDefinition] | None = Field(
        default=None, max_length=128, description="Overrides the version's default tools."
    )
    tool_choice: ToolChoice | None = None
    function_call: FunctionCallChoice | None = Field(
        default=None, description='"none", "auto" or {"name": ...} (legacy functions).'
    )
    params: ModelParams | None = Field(
        default=None, description="Per-run overrides of the version's parameters."
    )

    @field_validator("tools")
    @classmethod
    def _not_with_functions(
        cls, tools: list[ToolDefinition] | None, info: ValidationInfo
    ) -> list[ToolDefinition] | None:
        if tools and info.data.get("functions"):
            raise ValueError("give functions or tools, not both")
        return tools


class RunRequest(RunOptions):
    """Body of ``POST /v1/sessions/{uuid}/run``; every field is optional."""

    stream: bool = Field(
        default=False, description="Answer text/event-stream of LLMStreamResponse events."
    )
    messages: list[MessageIn] | None = Field(
        default=None,
        min_length=1,  # how many at most: max_messages_per_add, checked by the route
        description="Messages to append before running, atomically with the run: they are "
        "stored only once this run holds the session (so a 409 session_busy stores nothing).",
    )
    if_busy: Literal["reject", "wait", "enqueue", "interrupt"] = Field(
        default="reject",
        description="When another run holds the session: `reject` answers 409 "
        "session_busy at once; `wait` waits up to `wait_seconds` for it to finish; "
        "`enqueue` queues the run (its record `queued` at once, with its "
        "`queue_position`): queued runs take the session in arrival order, before any "
        "other, a foreground one waiting up to `wait_seconds`, a background one as long "
        "as it takes; `interrupt` cancels the running run (its reply not stored) and "
        "runs at once.",
    )
    wait_seconds: float = Field(
        default=30.0,
        ge=0,
        le=3600,
        description="With if_busy=wait: how long to wait for the session before 409.",
    )
    background: bool = Field(
        default=False,
        description="Answer at once (202, the run `running`) and run on the server: "
        "`GET /v1/runs/{uuid}` gives its state and result, `GET /v1/runs/{uuid}/events` "
        "its events (with `stream`, the model's reply piece by piece; else its end), "
        "`POST /v1/runs/{uuid}/cancel` stops it.",
    )
    on_disconnect: Literal["cancel", "continue"] = Field(
        default="cancel",
        description="With stream: when the client goes away before the end, `cancel` "
        "stops the run (nothing stored for its reply; `client_disconnected`); `continue` "
        "lets it finish and store its reply, its events resumable from "
        "`GET /v1/runs/{uuid}/events` (Last-Event-ID).",
    )
    regenerate: bool = Field(
        default=False,
        description="Answer the last reply again: the session's newest message must be an "
        "assistant reply; it is kept in the history, marked superseded, and never sent to "
        "the model again. Cannot be combined with messages.",
    )

    @field_validator("regenerate")
    @classmethod
    def _regenerate_alone(cls, regenerate: bool, info: ValidationInfo) -> bool:
        if regenerate and info.data.get("messages"):
            raise ValueError("regenerate answers the last reply again; leave messages out")
        return regenerate

    def fingerprint_fields(self) -> dict[str, Any]:
        """What an Idempotency-Key vouches for: the run's content, not how it is
        delivered (stream) or how long it may queue (if_busy, wait_seconds)."""
        return self.model_dump(
            mode="json",
            exclude={"stream", "if_busy", "wait_seconds", "background", "on_disconnect"},
        )


class VersionTrialRequest(RunOptions):
    """Body of ``POST /v1/chat-models/{name}/versions/{n}/test``: one model call on that
    version with these messages; nothing is stored."""

    messages: list[MessageIn] | None = Field(
        default=None, min_length=1, max_length=50, description="The conversation to answer."
    )
    message: str | None = Field(
        default=None,
        min_length=1,
        max_length=1_000_000,
        validate_default=True,
        description="Shorthand for messages=[{role: user, content: message}].",
    )
    variables: VariableValues | None = Field(
        default=None,
        max_length=MAX_VARIABLES,
        description="A value for every template variable the version declares.",
    )

    @field_validator("message")
    @classmethod
    def _messages_or_message(cls, message: str | None, info: ValidationInfo) -> str | None:
        if "messages" not in info.data:  # messages itself was invalid: reported there
            return message
        if (message is None) == (info.data["messages"] is None):
            raise ValueError(
                "give messages or message, not both"
                if message
                else "give messages (a list) or message (a string)"
            )
        return message


class DraftTrialRequest(VersionTrialRequest):
    """Body of ``POST /v1/chat-models/{name}/versions/draft/test``: one model call on an
    unsaved version (checked as creating it would be) with these messages; nothing is
    stored."""

    version: VersionCreate = Field(
        description="The draft: the body of `POST /v1/chat-models/{name}/versions`, "
        "checked the same way (`memo` is ignored; `publish` must stay false)."
    )


class FunctionCallOut(BaseModel):
    name: str
    arguments: str = Field(description="The raw JSON text the model produced.")
    args: dict[str, Any] | None = Field(description="``arguments`` parsed, or null if not JSON.")


class ToolCallOut(BaseModel):
    id: str
    type: str = "function"
    function: FunctionCallOut


class AttemptOut(BaseModel):
    """One try of the model call: retries and fallbacks each add one."""

    model: str
    outcome: str = Field(description="`succeeded`, or the error type of this try.")
    latency_ms: int
    provider_status: int | None = None


class ResponseDetail(BaseModel):
    name: str
    version: int
    version_uuid: UUID
    model: str
    session_uuid: UUID | None = Field(description="Null for a version test run.")
    message_uuid: UUID | None = Field(
        description="The stored assistant reply (null on error and for a version test run)."
    )
    run_uuid: UUID | None = Field(description="The run record (null for a version test run).")


class LLMResponse(BaseModel):
    """A run's result. Failures upstream are reported here, never raised."""

    content: str | None = None
    raw_output: str | None = None
    function_call: FunctionCallOut | None = None
    tool_calls: list[ToolCallOut] | None = None
    finish_reason: str | None = None
    usage: UsageOut | None = None
    cost: float | None = None
    latency_ms: int | None = None
    error: bool = False
    error_type: str | None = None
    error_log: str | None = None
    api_response: dict[str, Any] | None = None
    detail: ResponseDetail | None = None
    attempts: list[AttemptOut] | None = Field(
        default=None,
        description="Each try of the model call, in order (retries and fallbacks); "
        "`detail.model` is the model that answered.",
    )
    messages_sent: int | None = Field(default=None, description=MESSAGES_SENT)
    messages_dropped: int | None = Field(default=None, description=MESSAGES_DROPPED)
    prompt_tokens_estimate: int | None = Field(default=None, description=PROMPT_TOKENS_ESTIMATE)
    messages_summarised: int | None = Field(default=None, description=MESSAGES_SUMMARISED)
    summary_id: UUID | None = Field(default=None, description=SUMMARY_ID)
    summary_tokens: int | None = Field(default=None, description=SUMMARY_TOKENS)
    summary_error: str | None = Field(default=None, description=SUMMARY_ERROR)


class RunOut(BaseModel):
    """The stored record of one run, kept whether it succeeded or failed."""

    uuid: UUID
    session_uuid: UUID
    version: int
    version_uuid: UUID
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    stream: bool
    model: str
    error_type: str | None
    error_log: str | None
    latency_ms: int
    usage: UsageOut | None
    cost: float | None
    message_uuid: UUID | None
    created_at: datetime
    finished_at: datetime | None = Field(description="Null while the run is running.")
    key_name: str | None = Field(default=None, description="The API key that asked for it.")
    attempts: list[AttemptOut] | None = None
    idempotency_key: str | None = None
    messages_sent: int | None = Field(default=None, description=MESSAGES_SENT)
    messages_dropped: int | None = Field(default=None, description=MESSAGES_DROPPED)
    prompt_tokens_estimate: int | None = Field(default=None, description=PROMPT_TOKENS_ESTIMATE)
    messages_summarised: int | None = Field(default=None, description=MESSAGES_SUMMARISED)
    summary_id: UUID | None = Field(default=None, description=SUMMARY_ID)
    summary_tokens: int | None = Field(default=None, description=SUMMARY_TOKENS)
    summary_error: str | None = Field(default=None, description=SUMMARY_ERROR)


class RunList(BaseModel):
    data: list[RunOut] = Field(description="Oldest first.")
    next_cursor: str | None = Field(
        default=None,
        description="With limit: pass as ?cursor= to read the next page (null: no more).",
    )


class RunState(RunOut):
    """A run as ``GET /v1/runs/{uuid}`` shows it: its record, and once it has finished
    (``status`` not ``queued`` or ``running``) its result."""

    queue_position: int | None = Field(
        default=None,
        description="A queued run's place among its session's queued runs: 1 is next.",
    )
    response: LLMResponse | None = Field(
        default=None, description="The run's LLMResponse; null while it is running."
    )


class FunctionCallDelta(BaseModel):
    name: str | None = None
    arguments: str = ""


class ToolCallDelta(BaseModel):
    index: int
    id: str | None = None
    type: str | None = None
    function: FunctionCallDelta


class AssembledMessage(BaseModel):
    """The complete reply, as stored, on a stream's last event."""

    role: str = "assistant"
    content: str | None = None
    function_call: FunctionCallOut | None = None
    tool_calls: list[ToolCallOut] | None = None


class LLMStreamResponse(BaseModel):
    """One server-sent event of a streamed run.

    Pieces carry ``content`` / ``function_call`` / ``tool_calls`` deltas. The last event has
    ``done: true`` and either the assembled ``message`` with ``usage``, ``finish_reason``,
    ``cost`` and ``detail`` (with the stored message's uuid), or ``error: true`` with
    ``error_type`` and ``error_log``. After it the server sends ``data: [DONE]``.
    """

    content: str | None = None
    raw_output: str | None = None
    function_call: FunctionCallDelta | None = None
    tool_calls: list[ToolCallDelta] | None = None
    done: bool = False
    message: AssembledMessage | None = None
    finish_reason: str | None = None
    usage: UsageOut | None = None
    cost: float | None = None
    latency_ms: int | None = None
    error: bool = False
    error_type: str | None = None
    error_log: str | None = None
    detail: ResponseDetail | None = None
    attempts: list[AttemptOut] | None = None
    messages_sent: int | None = Field(default=None, description=MESSAGES_SENT)
    messages_dropped: int | None = Field(default=None, description=MESSAGES_DROPPED)
    prompt_tokens_estimate: int | None = Field(default=None, description=PROMPT_TOKENS_ESTIMATE)
    messages_summarised: int | None = Field(default=None, description=MESSAGES_SUMMARISED)
    summary_id: UUID | None = Field(default=None, description=SUMMARY_ID)
    summary_tokens: int | None = Field(default=None, description=SUMMARY_TOKENS)
    summary_error: str | None = Field(default=None, description=SUMMARY_ERROR)
