"""OpenAI's wire format for chat and text completions, models and errors.

Requests ignore fields they do not know (OpenAI clients send many optional ones); the
fields they know are validated as the rest of the API validates them. Responses follow
OpenAI's objects, plus a ``chatmodel`` extension object naming the chat model, version,
session and run that served the call, and the fields seed samples read
(``seed_fields.py``).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, Self
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from chatmodel_service.chat_models.schemas import (
    FunctionCallChoice,
    FunctionDefinition,
    ToolChoice,
    ToolDefinition,
    VariableValues,
)
from chatmodel_service.chat_models.templates import MAX_VARIABLES
from chatmodel_service.free_json import FreeJSON
from chatmodel_service.openai_compat.seed_fields import (
    SeedChatCompletion,
    SeedMessage,
    SeedOutput,
    SeedTextCompletion,
    SeedTokenUsage,
)


class LenientModel(BaseModel):
    """OpenAI clients send fields we do not use (``logprobs``, ``store``, ...): ignore them.
    NaN and infinities are refused, as everywhere."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)


# -- requests ---------------------------------------------------------------------------


class ContentPart(LenientModel):
    type: str
    text: str | None = None


class FunctionCallWire(LenientModel):
    name: str
    arguments: str = ""


class ToolCallWire(LenientModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCallWire


OpenAIRole = Literal["system", "developer", "user", "assistant", "function", "tool"]


class ChatMessage(LenientModel):
    """One message of ``messages``; ``developer`` is read as ``system``."""

    role: OpenAIRole
    content: str | list[ContentPart] | None = None
    name: str | None = None
    function_call: FunctionCallWire | None = None
    tool_calls: list[ToolCallWire] | None = None
    tool_call_id: str | None = None


class StreamOptions(LenientModel):
    include_usage: bool = False


class SamplingFields(LenientModel):
    """Per-call parameters: each one given overrides the version's for this call."""

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: str | list[str] | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    seed: int | None = None
    user: str | None = Field(
        default=None,
        max_length=200,
        description="Kept as a new session's metadata.user_id; picks the side of a split.",
    )
    n: int | None = Field(default=None, description="Only 1 is supported.")
    stream: bool = False
    stream_options: StreamOptions | None = None
    variables: VariableValues | None = Field(
        default=None,
        max_length=MAX_VARIABLES,
        description="Values for the version's template variables (chatmodel extension).",
    )

    @field_validator("n")
    @classmethod
    def _only_one_choice(cls, n: int | None) -> int | None:
        if n is not None and n != 1:
            raise ValueError("only n=1 is supported: the service returns one choice")
        return n

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class ChatCompletionRequest(SamplingFields):
    """Body of ``POST /v1/chat/completions``."""

    model: str = Field(min_length=1, max_length=200, description="A chat model's name.")
    # How many at most: max_messages_per_add, checked by the route (invalid_input).
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, description="Same as max_tokens.")
    response_format: FreeJSON | None = None
    tools: list[ToolDefinition] | None = Field(default=None, max_length=128)
    tool_choice: ToolChoice | None = None
    functions: list[FunctionDefinition] | None = Field(default=None, max_length=128)
    function_call: FunctionCallChoice | None = None
    session_uuid: UUID | None = Field(
        default=None, description="Same as the X-Session-Id header (chatmodel extension)."
    )


Prompt = Annotated[str, Field(max_length=1_000_000)]


class CompletionRequest(SamplingFields):
    """Body of ``POST /v1/completions``: the prompt is sent as one user message."""

    model: str = Field(min_length=1, max_length=200, description="A chat model's name.")
    prompt: Prompt | list[Prompt] = Field(description="A string, or a list of exactly one.")
    max_new_tokens: int | None = Field(default=None, description="Same as max_tokens.")
    echo: bool = False

    @field_validator("prompt")
    @classmethod
    def _one_prompt(cls, prompt: str | list[str]) -> str | list[str]:
        if isinstance(prompt, list) and len(prompt) != 1:
            raise ValueError("give one prompt: a string or a list of exactly one string")
        return prompt

    @field_validator("echo")
    @classmethod
    def _no_echo(cls, echo: bool) -> bool:
        if echo:
            raise ValueError("echo is not supported")
        return echo

    @property
    def prompt_text(self) -> str:
        return self.prompt if isinstance(self.prompt, str) else self.prompt[0]


# -- responses --------------------------------------------------------------------------


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


def seed_usage(usage: Usage | None) -> SeedTokenUsage | None:
    """``token_usage``, one of the fields seeds read (``seed_fields.py``)."""
    if usage is None:
        return None
    return SeedTokenUsage(
        prompt=usage.prompt_tokens, completion=usage.completion_tokens, total=usage.total_tokens
    )


class _WithoutEmpty(BaseModel):
    """Leaves out the fields named in ``_optional`` when they are None."""

    _optional: ClassVar[tuple[str, ...]] = ()

    @model_serializer(mode="wrap")
    def _leave_out_empty(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        fields: dict[str, Any] = handler(self)
        for name in self._optional:
            if fields.get(name) is None:
                fields.pop(name, None)
        return fields


class AssistantMessage(_WithoutEmpty):
    """The reply; ``function_call`` and ``tool_calls`` are left out when absent."""

    _optional = ("function_call", "tool_calls")
    role: Literal["assistant"] = "assistant"
    content: str | None
    function_call: FunctionCallWire | None = None
    tool_calls: list[ToolCallWire] | None = None


class ChatChoice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: str
    logprobs: None = None


class CallDetail(BaseModel):
    """What served the call (the ``chatmodel`` extension object)."""

    chat_model: str | None = Field(description="Null for a passthrough call.")
    version: int | None
    model: str = Field(description="The model that answered.")
    session_uuid: UUID | None
    run_uuid: UUID | None = Field(description="The run record (null for a passthrough call).")
    message_uuid: UUID | None = Field(description="The stored reply (sessions only).")


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage
    chatmodel: CallDetail
    chat_completion: SeedChatCompletion | None = None
    token_usage: SeedTokenUsage | None = None

    @model_validator(mode="after")
    def _seed_fields(self) -> Self:
        first = self.choices[0] if self.choices else None
        self.chat_completion = SeedChatCompletion(
            message=SeedMessage(content=(first.message.content or "") if first else ""),
            finish_reason=first.finish_reason if first else None,
        )
        self.token_usage = seed_usage(self.usage)
        return self


class TextChoice(BaseModel):
    text: str
    index: int = 0
    logprobs: None = None
    finish_reason: str


class TextCompletion(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[TextChoice]
    usage: Usage
    chatmodel: CallDetail
    completion: SeedTextCompletion | None = None
    output: SeedOutput | None = None
    token_usage: SeedTokenUsage | None = None

    @model_validator(mode="after")
    def _seed_fields(self) -> Self:
        text = "".join(choice.text for choice in self.choices)
        finish = self.choices[0].finish_reason if self.choices else None
        self.completion = SeedTextCompletion(text=text, finish_reason=finish)
        self.output = SeedOutput(text=text, num_completion_tokens=self.usage.completion_tokens)
        self.token_usage = seed_usage(self.usage)
        return self


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "chatmodel"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorBody(BaseModel):
    error: ErrorDetail


# -- streamed responses -----------------------------------------------------------------


class FunctionCallDelta(_WithoutEmpty):
    _optional = ("name",)
    name: str | None = None
    arguments: str = ""


class ToolCallDelta(_WithoutEmpty):
    _optional = ("id", "type")
    index: int
    id: str | None = None
    type: str | None = None
    function: FunctionCallDelta


class ChunkDelta(_WithoutEmpty):
    _optional = ("role", "content", "function_call", "tool_calls")
    role: Literal["assistant"] | None = None
    content: str | None = None
    function_call: FunctionCallDelta | None = None
    tool_calls: list[ToolCallDelta] | None = None


class ChatChunkChoice(BaseModel):
    index: int = 0
    delta: ChunkDelta
    finish_reason: str | None = None
    logprobs: None = None


class ChatCompletionChunk(_WithoutEmpty):
    """One ``data:`` event; the last one with ``include_usage`` has no choices, only usage.
    The chunk with ``finish_reason`` carries the ``chatmodel`` extension object."""

    _optional = ("usage", "chatmodel", "token_usage")
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChatChunkChoice]
    usage: Usage | None = None
    chatmodel: CallDetail | None = None
    chat_completion: SeedChatCompletion | None = None
    token_usage: SeedTokenUsage | None = None

    @model_validator(mode="after")
    def _seed_fields(self) -> Self:
        content = "".join(choice.delta.content or "" for choice in self.choices)
        finish = self.choices[0].finish_reason if self.choices else None
        self.chat_completion = SeedChatCompletion(
            message=SeedMessage(content=content), finish_reason=finish
        )
        self.token_usage = seed_usage(self.usage)
        return self


class TextChunkChoice(BaseModel):
    text: str
    index: int = 0
    logprobs: None = None
    finish_reason: str | None = None


class TextCompletionChunk(_WithoutEmpty):
    _optional = ("usage", "chatmodel", "token_usage")
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[TextChunkChoice]
    usage: Usage | None = None
    chatmodel: CallDetail | None = None
    completion: SeedTextCompletion | None = None
    output: SeedOutput | None = None
    token_usage: SeedTokenUsage | None = None

    @model_validator(mode="after")
    def _seed_fields(self) -> Self:
        text = "".join(choice.text for choice in self.choices)
        finish = self.choices[0].finish_reason if self.choices else None
        self.completion = SeedTextCompletion(text=text, finish_reason=finish)
        self.output = SeedOutput(text=text)
        self.token_usage = seed_usage(self.usage)
        return self
