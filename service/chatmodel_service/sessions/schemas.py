"""Wire formats for sessions and their messages."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Self, overload
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from chatmodel_service.chat_models.schemas import MAX_NUMBER, VariableValues, VersionSelector
from chatmodel_service.chat_models.templates import MAX_VARIABLES
from chatmodel_service.free_json import FreeJSON

Role = Literal["system", "user", "assistant", "function", "tool"]


class StrictModel(BaseModel):
    """A request body: unknown fields, NaN and infinities are refused."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class FunctionCallIn(StrictModel):
    name: str = Field(min_length=1, max_length=64)
    arguments: str = ""


class ToolCallIn(StrictModel):
    id: str = Field(min_length=1, max_length=200)
    type: Literal["function"] = "function"
    function: FunctionCallIn


class MessageIn(StrictModel):
    """One message as a client posts it (OpenAI chat format plus ``uuid`` and ``metadata``)."""

    role: Role
    content: str | None = Field(default=None, max_length=1_000_000)
    name: str | None = Field(default=None, min_length=1, max_length=64)
    function_call: FunctionCallIn | None = None
    tool_calls: list[ToolCallIn] | None = Field(default=None, min_length=1, max_length=128)
    tool_call_id: str | None = Field(default=None, min_length=1, max_length=200)
    uuid: UUID | None = Field(
        default=None, description="Client-chosen id; posting it again returns the stored message."
    )
    metadata: FreeJSON | None = None

    @model_validator(mode="after")
    def _fields_fit_role(self) -> Self:
        if self.role != "assistant" and (self.function_call or self.tool_calls):
            raise ValueError("function_call and tool_calls are only allowed on assistant messages")
        if self.role != "tool" and self.tool_call_id is not None:
            raise ValueError("tool_call_id is only allowed on tool messages")
        if self.role == "assistant":
            if self.content is None and not self.function_call and not self.tool_calls:
                raise ValueError("an assistant message needs content, function_call or tool_calls")
        elif self.content is None:
            raise ValueError(f"a {self.role} message needs content")
        return self


class MessagesAdd(StrictModel):
    # How many at most is a setting (max_messages_per_add, checked by the route): one
    # limit, one answer (422 invalid_input), not a schema cap answering validation_error.
    messages: list[MessageIn] = Field(min_length=1)


@overload
def total_tokens(prompt_tokens: int, completion_tokens: int) -> int: ...
@overload
def total_tokens(prompt_tokens: int | None, completion_tokens: int | None) -> int | None: ...
def total_tokens(prompt_tokens: int | None, completion_tokens: int | None) -> int | None:
    """A call's total tokens, as every usage the API reports it: the sum of the two counts
    (one not known counts 0), None when neither is known."""
    if prompt_tokens is None and completion_tokens is None:
        return None
    return (prompt_tokens or 0) + (completion_tokens or 0)


class UsageOut(BaseModel):
    prompt_tokens: int | None
    completion_tokens: int | None
    total_tokens: int | None

    @classmethod
    def of(cls, prompt_tokens: int | None, completion_tokens: int | None) -> Self:
        """The usage of a call that counted these tokens (``total_tokens``: their total)."""
        return cls(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            total_tokens=total_tokens(prompt_tokens, completion_tokens),
        )


class MessageOut(BaseModel):
    uuid: UUID
    seq: int
    role: Role
    content: str | None
    name: str | None = None
    function_call: dict[str, Any] | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None
    metadata: dict[str, Any] | None = None
    created_at: datetime
    # Assistant replies produced by a run:
    run_uuid: UUID | None = None
    model: str | None = None
    usage: UsageOut | None = None
    cost: float | None = None
    latency_ms: int | None = None
    finish_reason: str | None = None
    superseded: bool = Field(
        default=False,
        description="A reply that was regenerated: kept in the history, never sent again.",
    )
    deleted: bool = Field(
        default=False,
        description="Deleted as a conversation item (Conversations API): superseded too, and "
        "left out of that API's reads.",
    )


class MessageList(BaseModel):
    data: list[MessageOut]


MessageOrder = Literal["asc", "desc"]


class SummaryOut(BaseModel):
    """A stored summary of a session's older messages (context_strategy summarize): not a
    message of the conversation, but what a run sends in place of those up to
    ``covers_through_seq``."""

    uuid: UUID
    covers_through_seq: int = Field(description="The last message (seq) it stands in for.")
    content: str
    model: str = Field(description="The model that wrote it.")
    tokens: int = Field(description="Its tokens as the system message a run sends.")
    prompt_tokens: int | None = Field(description="The summary call's usage.")
    completion_tokens: int | None
    created_at: datetime


class SummaryList(BaseModel):
    data: list[SummaryOut] = Field(description="Newest first: the first is what runs use.")


class MessagePage(BaseModel):
    """A page of a session's messages: ``data`` is in ascending ``seq`` order whichever
    end the pages are read from."""

    data: list[MessageOut] = Field(description="Oldest first, also when reading backwards.")
    has_more: bool = Field(description="More messages lie beyond this page, in reading order.")
    next_after: int | None = Field(
        description="Reading forwards (order=asc): pass as ?after= to read the next page."
    )
    next_before: int | None = Field(
        default=None,
        description="Reading backwards (order=desc): pass as ?before= to read the page of "
        "older messages.",
    )


class SessionCreate(StrictModel):
    chat_model: str = Field(min_length=1, max_length=200)
    version: VersionSelector = "deploy"
    session_uuid: UUID | None = None
    metadata: FreeJSON = Field(default_factory=dict)
    variables: VariableValues | None = Field(
        default=None,
        max_length=MAX_VARIABLES,
        description="A string value for every template variable the pinned version declares.",
    )


class SessionOut(BaseModel):
    uuid: UUID
    chat_model: str
    version: int
    version_uuid: UUID
    model: str
    metadata: dict[str, Any]
    created_at: datetime
    variables: dict[str, str] | None = None
    parent_session_uuid: UUID | None = Field(
        default=None,
        description="A fork: the session it was copied from (which may since be deleted).",
    )
    parent_seq: int | None = Field(
        default=None, description="A fork: the last seq copied from the parent session."
    )


class SessionFork(StrictModel):
    """Where to fork a session: at a message (by uuid or seq; default: the newest)."""

    at_message_uuid: UUID | None = Field(
        default=None, description="Copy the messages up to and including this one."
    )
    at_seq: int | None = Field(
        default=None,
        ge=1,
        le=MAX_NUMBER,
        description="Copy the messages with seq <= at_seq (instead of at_message_uuid).",
    )
    session_uuid: UUID | None = Field(
        default=None,
        description="The new session's uuid; forking again with it returns that fork.",
    )
    metadata: FreeJSON | None = Field(
        default=None, description="The new session's metadata (default: the original's)."
    )

    @field_validator("at_seq")
    @classmethod
    def _one_fork_point(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is not None and info.data.get("at_message_uuid") is not None:
            raise ValueError("give at_message_uuid or at_seq, not both")
        return value


class SessionSummary(SessionOut):
    """A session as the admin listing shows it."""

    message_count: int
    last_message_at: datetime | None
    user_id: str | None = Field(
        description="metadata.user_id as the listing filters on it: a string as it is, an "
        "integer as its digits; null for any other value or more than 200 characters."
    )
    first_user_message: str | None = Field(
        description="The content of the session's first user message, cut to 200 characters."
    )
    run_count: int = Field(description="The session's runs, whatever their status.")
    failed_runs: int = Field(
        description="Its runs with status `failed` (`interrupted` ones included; cancelled "
        "runs are not failures)."
    )


class SessionPage(BaseModel):
    data: list[SessionSummary] = Field(description="Newest first.")
    next_cursor: str | None = Field(description="Pass as ?cursor= to read the next page.")
