"""Scale EGP's wire format: what the ``scale-egp`` SDK and EGP's documented samples send
and read. ``model`` is a chat model's name, as on the OpenAI-compatible routes.

Requests ignore fields we do not use (EGP clients send ``images: null``, ``memory_strategy``
...), and their limits are the OpenAI-compatible requests', so a request read here is a
valid one there. Responses carry EGP's fields, plus our ``chatmodel`` object naming the
run (EGP's SDK models ignore fields they do not know).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from chatmodel_service.openai_compat.schemas import CallDetail

ModelName = Annotated[str, Field(min_length=1, max_length=200, description="A chat model's name.")]
Text = Annotated[str, Field(max_length=1_000_000)]


class EGPRequestModel(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)


class ModelParameters(EGPRequestModel):
    """Override the version's parameters for this call (null: the version's own)."""

    temperature: float | None = None
    stop_sequences: list[Annotated[str, Field(max_length=500)]] | None = Field(
        default=None, max_length=4
    )
    max_tokens: int | None = None
    top_p: float | None = None


class CompletionRequest(EGPRequestModel):
    """``POST /egp/v2/completions`` (the SDK) and ``/egp/v1/completions`` (EGP's samples)."""

    model: ModelName
    prompt: Text
    images: list[dict[str, object]] | None = Field(
        default=None, description="Not supported: leave it null or empty."
    )
    model_parameters: ModelParameters | None = None
    stream: bool = False
    account_id: str | None = Field(
        default=None, description="The caller's project id (GET /egp/user-info), if given."
    )


EGPRole = Literal["system", "user", "agent", "assistant", "tool"]


class ChatMessage(EGPRequestModel):
    role: EGPRole = Field(description="`agent` is the model's (OpenAI's `assistant`).")
    content: Text | None = None
    name: str | None = Field(default=None, max_length=200, description="A tool message's tool.")


class ChatCompletionRequest(EGPRequestModel):
    """``POST /egp/v1/chat-completions``: the whole conversation, nothing stored but the
    run record."""

    model: ModelName
    messages: list[ChatMessage] = Field(min_length=1)
    model_parameters: ModelParameters | None = None
    stream: bool = False
    account_id: str | None = None


# -- responses --------------------------------------------------------------------------


class TokenUsage(BaseModel):
    prompt: int
    completion: int
    total: int


class CompletionContent(BaseModel):
    text: str
    finish_reason: str | None = None


class Completion(BaseModel):
    """A completion, or one streamed piece of it (``token_usage`` and ``chatmodel`` on the
    last piece only)."""

    completion: CompletionContent
    token_usage: TokenUsage | None = None
    chatmodel: CallDetail | None = None


class ToolRequest(BaseModel):
    name: str
    arguments: str


class AgentMessage(BaseModel):
    role: Literal["agent"] = "agent"
    content: str | None
    tool_request: ToolRequest | None = None


class ChatCompletionContent(BaseModel):
    message: AgentMessage
    finish_reason: str | None = None


class ChatCompletion(BaseModel):
    """A chat completion, or one streamed piece of it (``token_usage`` and ``chatmodel``
    on the last piece only)."""

    chat_completion: ChatCompletionContent
    token_usage: TokenUsage | None = None
    chatmodel: CallDetail | None = None


class Account(BaseModel):
    id: str = Field(description="The project's id.")
    name: str = Field(description="The project's name.")


class AccessProfile(BaseModel):
    role: str = Field(description="The key's scope: `admin` or `client`.")
    account: Account


class UserInfo(BaseModel):
    """``GET /egp/user-info``: the API key as EGP's user, its project as the one account.
    SDK 1.1.15 reads ``access_profiles``; releases up to 1.1.14 read ``accounts``."""

    id: str = Field(description="The API key's id (`local` when keys are not required).")
    first_name: str | None = Field(description="The API key's name.")
    last_name: str | None = None
    email: str = ""
    access_profiles: list[AccessProfile]
    accounts: list[AccessProfile]
