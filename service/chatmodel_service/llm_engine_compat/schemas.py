"""LLM Engine's wire format for completions (``llmengine.data_types.completion``, 0.0.0b45).

Requests ignore fields they do not know, as LLM Engine's SDK may send more in a later
release. Of the fields it knows, those this server cannot honour are refused by the
service (``service.refuse_unhonoured``), not dropped.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from chatmodel_service.free_json import FreeJSON
from chatmodel_service.openai_compat.schemas import LenientModel, Prompt


class CompletionV1Request(LenientModel):
    """Body of both completion routes (LLM Engine's sync and stream requests are alike)."""

    prompt: Prompt
    max_new_tokens: int
    temperature: float
    stop_sequences: list[str] | None = None
    return_token_log_probs: bool | None = False
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    include_stop_str_in_output: bool | None = None
    guided_json: FreeJSON | None = None
    guided_regex: str | None = None
    guided_choice: list[str] | None = None
    guided_grammar: str | None = None
    skip_special_tokens: bool | None = True


class CompletionOutput(BaseModel):
    text: str
    num_prompt_tokens: int | None
    num_completion_tokens: int
    tokens: None = Field(default=None, description="Token log probabilities: never given.")


class CompletionSyncV1Response(BaseModel):
    request_id: str = Field(description="The run record's uuid.")
    output: CompletionOutput


class CompletionStreamOutput(BaseModel):
    text: str
    finished: bool
    num_prompt_tokens: int | None = None
    num_completion_tokens: int | None = Field(
        default=None, description="Set on the last event (``finished: true``) only."
    )


class StreamErrorContent(BaseModel):
    error: str
    timestamp: str


class StreamError(BaseModel):
    status_code: int
    content: StreamErrorContent


class CompletionStreamV1Response(BaseModel):
    """One ``data:`` event: a piece of the reply, or (``output`` null) the failure that
    ended the stream. No ``data: [DONE]`` follows: the SDK would fail to read it."""

    request_id: str
    output: CompletionStreamOutput | None
    error: StreamError | None = None
