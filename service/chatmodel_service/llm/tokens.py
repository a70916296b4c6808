"""Token counts for fitting a prompt to a model, without the network, and their caches.

``count_message_tokens`` / ``count_schema_tokens`` use ``litellm.token_counter``
(tiktoken; Hugging Face tokenizers are never downloaded). What LiteLLM cannot count is
estimated as one token per 4 characters of the JSON sent (``estimated_tokens``);
counting never raises. Two figures are kept per process: what an empty prompt counts
per model, and the counts of recent system prompts (every run counts its version's).
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from typing import Any

from chatmodel_service.llm.model_info import ModelInfo

SYSTEM_COUNTS_KEPT = 256  # system prompts whose token counts are kept, per process
SYSTEM_COUNT_MAX_CHARS = 16_384  # longer ones are counted every time


def estimated_tokens(value: Any) -> int:
    """The fallback count: one token per 4 characters of ``value`` as JSON, rounded up."""
    return math.ceil(len(json.dumps(value, ensure_ascii=False, default=str)) / 4)


class TokenCounting(ModelInfo):
    """The gateway's token counts (see the module doc)."""

    def __init__(self, litellm_module: Any) -> None:
        super().__init__(litellm_module)
        # Empty-prompt tokens per model: they never change while the process runs.
        self._empty_prompt: dict[str, int] = {}
        # Token counts of system prompts by (model, text), least recently used first.
        self._system_counts: OrderedDict[tuple[str, str], int] = OrderedDict()

    def _token_counter(
        self, model: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None
    ) -> int:
        count = self._litellm.token_counter(model=model, messages=messages, tools=tools)
        return int(count)

    def _empty_prompt_tokens(self, model: str) -> int:
        """What LiteLLM counts for a prompt with no messages (the reply's priming)."""
        if model not in self._empty_prompt:
            try:
                self._empty_prompt[model] = self._token_counter(model, [], None)
            except Exception:  # LiteLLM cannot count for this model: no fixed part
                self._empty_prompt[model] = 0
        return self._empty_prompt[model]

    def count_message_tokens(self, model: str, message: dict[str, Any]) -> int:
        """The tokens one OpenAI-format message adds to a prompt for ``model`` (its
        role, content, name and calls). Never raises: what LiteLLM cannot count is
        ``estimated_tokens(message)``. A plain system message's count is kept (a few
        hundred of them, up to 16k characters each): every run counts its version's
        system prompt, which never changes."""
        content = message.get("content")
        key = None
        if message.get("role") == "system" and len(message) == 2 and isinstance(content, str):
            key = (model, content) if len(content) <= SYSTEM_COUNT_MAX_CHARS else None
        if key is not None and key in self._system_counts:
            self._system_counts.move_to_end(key)
            return self._system_counts[key]
        try:
            count = max(
                1, self._token_counter(model, [message], None) - self._empty_prompt_tokens(model)
            )
        except Exception:  # a message or model LiteLLM cannot tokenize: estimate
            count = max(1, estimated_tokens(message))
        if key is not None:
            self._system_counts[key] = count
            if len(self._system_counts) > SYSTEM_COUNTS_KEPT:
                self._system_counts.popitem(last=False)
        return count

    def count_schema_tokens(
        self,
        model: str,
        functions: list[dict[str, Any]] | None,
        tools: list[dict[str, Any]] | None,
    ) -> int:
        """The tokens a call adds besides its messages: the function or tool schemas
        (functions are counted as the tools they are sent as) and the few tokens that
        prime the reply. Never raises (estimated when LiteLLM cannot count)."""
        schemas = list(tools or []) + [{"type": "function", "function": f} for f in functions or []]
        try:
            return self._token_counter(model, [], schemas or None)
        except Exception:  # LiteLLM cannot count for this model: estimate
            return estimated_tokens(schemas) if schemas else 0
