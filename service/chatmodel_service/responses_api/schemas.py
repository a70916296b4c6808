"""The Responses and Conversations APIs' wire format: requests, the Response and
Conversation objects, items, pages and stream events.

Requests are read as OpenAI reads them: the fields this server serves are validated (a 400
naming the field), the optional ones OpenAI clients send along and that change nothing
here (``include``, ``service_tier``, ``prompt_cache_key``, ...) are accepted and ignored,
and a field this server would have to act on but cannot (a hosted tool, ``background``)
is refused by name. Input items are kept as JSON objects here and read one by one in
``items.py``, so an error names ``input.<i>.<field>``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chatmodel_service.chat_models.schemas import VariableValues
from chatmodel_service.chat_models.templates import MAX_VARIABLES
from chatmodel_service.free_json import FreeJSON

# OpenAI's limits on metadata: 16 pairs, keys up to 64 characters, values up to 512.
Metadata = Annotated[
    dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=512)]],
    Field(max_length=16),
]
ItemJSON = Annotated[dict[str, Any], Field(json_schema_extra={"type": "object"})]


class LenientModel(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)


class PromptReference(LenientModel):
    """A versioned prompt: a chat model by name, one of its versions by number (default:
    its published one), and its template variables' values."""

    id: str = Field(min_length=1, max_length=200, description="A chat model's name.")
    version: str | None = Field(default=None, max_length=20, description='A number, e.g. "3".')
    variables: VariableValues | None = Field(default=None, max_length=MAX_VARIABLES)


class ConversationReference(LenientModel):
    id: str = Field(max_length=200)


class TextFormat(LenientModel):
    type: Literal["text", "json_object", "json_schema"] = "text"
    name: str | None = Field(default=None, max_length=64)
    schema_: FreeJSON | None = Field(default=None, alias="schema")
    strict: bool | None = None
    description: str | None = None


class TextOptions(LenientModel):
    format: TextFormat | None = None


class ResponseCreate(LenientModel):
    """Body of ``POST /v1/responses``."""

    model: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="A chat model's name: its published version.",
    )
    prompt: PromptReference | None = None
    input: str | list[ItemJSON] | None = None
    instructions: str | None = Field(default=None, max_length=1_000_000)
    conversation: str | ConversationReference | None = None
    previous_response_id: str | None = Field(default=None, max_length=200)
    store: bool = True
    stream: bool = False
    background: bool = False
    tools: list[ItemJSON] | None = Field(default=None, max_length=128)
    tool_choice: str | ItemJSON | None = None
    parallel_tool_calls: bool | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_output_tokens: int | None = Field(default=None, ge=1)
    truncation: Literal["auto", "disabled"] | None = None
    metadata: Metadata | None = None
    text: TextOptions | None = None
    user: str | None = Field(default=None, max_length=200)
    safety_identifier: str | None = Field(default=None, max_length=200)

    @property
    def conversation_id(self) -> str | None:
        if isinstance(self.conversation, ConversationReference):
            return self.conversation.id
        return self.conversation


class ResponseEcho(BaseModel):
    """What a response's request asked for, as its Response object echoes it; stored on
    its run record (``chat_run.responses_request``). ``input_seq``: the first and last seq
    of the session messages it stored as its input."""

    model: str
    instructions: str | None = None
    tools: list[dict[str, Any]] = Field(default_factory=list)
    tool_choice: str | dict[str, Any] = "auto"
    parallel_tool_calls: bool = True
    temperature: float | None = None
    top_p: float | None = None
    max_output_tokens: int | None = None
    truncation: Literal["auto", "disabled"] = "disabled"
    metadata: dict[str, str] = Field(default_factory=dict)
    previous_response_id: str | None = None
    conversation: str | None = None
    prompt: dict[str, Any] | None = None
    text: dict[str, Any] = Field(default_factory=lambda: {"format": {"type": "text"}})
    user: str | None = None
    safety_identifier: str | None = None
    store: bool = True
    background: bool = False
    input_seq: tuple[int, int] | None = None


# -- the Response object -----------------------------------------------------------------


class OutputText(BaseModel):
    type: Literal["output_text"] = "output_text"
    text: str
    annotations: list[Any] = Field(default_factory=list)
    logprobs: list[Any] = Field(default_factory=list)


class InputText(BaseModel):
    type: Literal["input_text"] = "input_text"
    text: str


class MessageItem(BaseModel):
    id: str
    type: Literal["message"] = "message"
    status: Literal["in_progress", "completed", "incomplete"] = "completed"
    role: Literal["user", "assistant", "system", "developer"]
    content: list[OutputText | InputText]


class FunctionCallItem(BaseModel):
    id: str
    type: Literal["function_call"] = "function_call"
    status: Literal["in_progress", "completed", "incomplete"] = "completed"
    call_id: str
    name: str
    arguments: str


class FunctionCallOutputItem(BaseModel):
    id: str
    type: Literal["function_call_output"] = "function_call_output"
    status: Literal["in_progress", "completed", "incomplete"] = "completed"
    call_id: str
    output: str


Item = MessageItem | FunctionCallItem | FunctionCallOutputItem


class InputTokensDetails(BaseModel):
    cached_tokens: int = 0


class OutputTokensDetails(BaseModel):
    reasoning_tokens: int = 0


class ResponseUsage(BaseModel):
    input_tokens: int
    input_tokens_details: InputTokensDetails = Field(default_factory=InputTokensDetails)
    output_tokens: int
    output_tokens_details: OutputTokensDetails = Field(default_factory=OutputTokensDetails)
    total_tokens: int


class ResponseError(BaseModel):
    """A failed response's error: one of OpenAI's codes (``rate_limit_exceeded`` for a
    rate-limited model, else ``server_error``); the message names our ``error_type``
    first, as the native run's ``error_type`` and ``error_log``."""

    code: Literal["server_error", "rate_limit_exceeded"]
    message: str

    @classmethod
    def of(cls, error_type: str, error_log: str) -> ResponseError:
        code: Literal["server_error", "rate_limit_exceeded"] = (
            "rate_limit_exceeded" if error_type == "rate_limited" else "server_error"
        )
        return cls(code=code, message=f"{error_type}: {error_log}")


class IncompleteDetails(BaseModel):
    reason: Literal["max_output_tokens", "content_filter"]


class ConversationRef(BaseModel):
    id: str


class ResponseDetail(BaseModel):
    """Which chat model, version, session and run served a response (chatmodel extension):
    the same objects in the native API."""

    chat_model: str
    version: int
    session_uuid: str | None
    run_uuid: str


ResponseStatus = Literal["completed", "failed", "in_progress", "incomplete", "cancelled", "queued"]


class ResponseObject(BaseModel):
    id: str
    object: Literal["response"] = "response"
    created_at: int
    status: ResponseStatus
    background: bool = False
    model: str
    output: list[Item]
    usage: ResponseUsage | None
    error: ResponseError | None = None
    incomplete_details: IncompleteDetails | None = None
    instructions: str | None
    tools: list[dict[str, Any]]
    tool_choice: str | dict[str, Any]
    parallel_tool_calls: bool
    temperature: float | None
    top_p: float | None
    max_output_tokens: int | None
    truncation: Literal["auto", "disabled"]
    metadata: dict[str, str]
    previous_response_id: str | None
    conversation: ConversationRef | None
    prompt: dict[str, Any] | None
    text: dict[str, Any]
    store: bool
    user: str | None
    safety_identifier: str | None
    reasoning: dict[str, Any] = Field(default_factory=lambda: {"effort": None, "summary": None})
    service_tier: str = "default"
    chatmodel: ResponseDetail


class ResponseDeleted(BaseModel):
    id: str
    object: Literal["response"] = "response"
    deleted: Literal[True] = True


# -- conversations -----------------------------------------------------------------------


class ConversationCreate(LenientModel):
    """Body of ``POST /v1/conversations``. ``model`` (a chatmodel extension) names the chat
    model that holds the conversation until its first response (see ``conversations.py``)."""

    items: list[ItemJSON] | None = Field(default=None, max_length=20)
    metadata: Metadata | None = None
    model: str | None = Field(default=None, max_length=200)


class ConversationUpdate(LenientModel):
    metadata: Metadata


class ItemsCreate(LenientModel):
    items: list[ItemJSON] = Field(min_length=1, max_length=20)


class ConversationObject(BaseModel):
    id: str
    object: Literal["conversation"] = "conversation"
    created_at: int
    metadata: dict[str, Any]


class ConversationDeleted(BaseModel):
    id: str
    object: Literal["conversation.deleted"] = "conversation.deleted"
    deleted: Literal[True] = True


class ItemPage(BaseModel):
    """A cursor page of items, as OpenAI's list endpoints answer."""

    object: Literal["list"] = "list"
    data: list[Item]
    first_id: str | None
    last_id: str | None
    has_more: bool
