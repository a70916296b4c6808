"""The gateway's own types: nothing outside ``llm/`` ever sees a LiteLLM object."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class LLMCall:
    """Everything needed for one model call, already merged from version and request."""

    model: str
    messages: list[dict[str, Any]]
    params: dict[str, Any] = field(default_factory=dict)
    api_base: str | None = None
    functions: list[dict[str, Any]] | None = None
    function_call: str | dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    timeout: float = 120.0
    # Retries of a retryable failure (429, 5xx, timeout, connection) per model, then the
    # fallback models in order, each with the same retries; ``retry_backoff`` is the first
    # pause in seconds (doubled per retry, with jitter).
    num_retries: int = 0
    fallbacks: tuple[str, ...] = ()
    retry_backoff: float = 0.5


@dataclass(frozen=True)
class Attempt:
    """One try of a call: which model, how it ended (``succeeded`` or an error type), the
    provider's HTTP status if it sent one, and how long it took."""

    model: str
    outcome: str
    latency_ms: int
    provider_status: int | None = None


@dataclass(frozen=True)
class LLMResult:
    """A completed assistant reply."""

    model: str
    content: str | None
    function_call: dict[str, str] | None
    tool_calls: list[dict[str, Any]] | None
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cost: float | None
    latency_ms: int
    api_response: dict[str, Any]
    attempts: tuple[Attempt, ...] = ()


@dataclass(frozen=True)
class LLMFailure:
    """A call that produced no usable reply. ``error_log`` is safe to show to a person."""

    model: str
    error_type: str
    error_log: str
    latency_ms: int
    provider_status: int | None = None
    api_response: dict[str, Any] | None = None
    attempts: tuple[Attempt, ...] = ()


LLMOutcome = LLMResult | LLMFailure


@dataclass(frozen=True)
class StreamDelta:
    """One piece of a streamed reply, as the provider sent it."""

    content: str | None = None
    function_call: dict[str, str] | None = None  # {"name"?: ..., "arguments": fragment}
    tool_calls: list[dict[str, Any]] | None = None  # [{"index", "id"?, "type"?, "function"}]


StreamEvent = StreamDelta | LLMResult | LLMFailure


@dataclass(frozen=True)
class ModelProblem:
    """Why a version's model settings would fail every call. ``field`` is the request path
    to blame (``model`` or ``params.<name>``); ``detail`` says what to do instead."""

    field: str
    detail: str


# ``LLMGateway.check_model``: (model, api_base, parameter names) -> problems, offline.
ModelChecker = Callable[[str, str | None, Collection[str]], list[ModelProblem]]

# ``LLMGateway.count_message_tokens``: (model, OpenAI-format message) -> its tokens in a
# prompt; never raises (a model LiteLLM cannot tokenize gets an estimate).
TokenCounter = Callable[[str, dict[str, Any]], int]


@dataclass(frozen=True)
class ModelLimits:
    """What LiteLLM's model map says about a model's token limits (None: not listed)."""

    max_input_tokens: int | None = None
    max_output_tokens: int | None = None
