"""The extra fields of our OpenAI-style responses that seeds 000, 001 and 003 read.

Besides OpenAI's fields, every response and chunk carries the shapes those samples parse
(``chat_completion.message.content``, ``completion.text``, ``output.text``,
``token_usage``), filled from the OpenAI fields (``schemas.py``), so their code works with
only the URL and model changed. OpenAI clients ignore the extra fields.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class SeedMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class SeedChatCompletion(BaseModel):
    message: SeedMessage
    finish_reason: str | None = None


class SeedTextCompletion(BaseModel):
    text: str
    finish_reason: str | None = None


class SeedOutput(BaseModel):
    text: str
    num_completion_tokens: int | None = None


class SeedTokenUsage(BaseModel):
    prompt: int
    completion: int
    total: int
