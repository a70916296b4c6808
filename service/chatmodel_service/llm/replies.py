"""Reading what a provider answered: a LiteLLM response (or a stream's chunks, assembled)
becomes an ``LLMResult`` with its cost, or an ``LLMFailure`` when it cannot be read or
calls a function with arguments that are not JSON.

The cost is LiteLLM's (``response_cost``, else ``litellm.completion_cost``); the offline
model costs 0.0, and a model missing from LiteLLM's price table costs None, remembered
so its price is not looked up again.
"""

from __future__ import annotations

import json
from typing import Any

from chatmodel_service.llm import OFFLINE_PROVIDER
from chatmodel_service.llm.model_info import ModelInfo
from chatmodel_service.llm.types import LLMCall, LLMFailure, LLMOutcome, LLMResult

# What reading a response that is not shaped like a completion raises.
UNREADABLE = (AttributeError, IndexError, KeyError, TypeError, ValueError)


def api_response_dict(response: Any) -> dict[str, Any]:
    """The provider's OpenAI-format response as plain JSON data."""
    dumped = response.model_dump() if hasattr(response, "model_dump") else dict(response)
    return {k: v for k, v in dumped.items() if not k.startswith("_")}


class ReplyReading(ModelInfo):
    """The gateway's reading of responses into outcomes (see the module doc)."""

    def __init__(self, litellm_module: Any) -> None:
        super().__init__(litellm_module)
        # Models LiteLLM's price table cannot price: asking again would fail again.
        self._unpriced: set[str] = set()

    def _reply(self, call: LLMCall, response: Any, latency: int) -> LLMOutcome:
        """The outcome of a non-streamed call that returned ``response``."""
        try:
            return self._result(call, response, api_response_dict(response), latency)
        except UNREADABLE as exc:
            return LLMFailure(
                model=call.model,
                error_type="malformed_response",
                error_log=f"The provider's response could not be read: {type(exc).__name__}",
                latency_ms=latency,
            )

    def _assembled(self, call: LLMCall, chunks: list[Any], latency: int) -> LLMOutcome:
        """The outcome of a streamed call whose pieces were ``chunks``."""
        try:
            response = self._litellm.stream_chunk_builder(chunks, messages=call.messages)
            return self._result(call, response, api_response_dict(response), latency)
        except UNREADABLE as exc:
            return LLMFailure(
                model=call.model,
                error_type="malformed_response",
                error_log=f"The streamed reply could not be assembled: {type(exc).__name__}",
                latency_ms=latency,
            )

    def _result(
        self, call: LLMCall, response: Any, api_response: dict[str, Any], latency: int
    ) -> LLMOutcome:
        choice = response.choices[0]
        message = choice.message
        function_call = None
        if getattr(message, "function_call", None):
            function_call = {
                "name": str(message.function_call.name),
                "arguments": str(message.function_call.arguments or ""),
            }
        tool_calls = None
        if getattr(message, "tool_calls", None):
            tool_calls = [
                {
                    "id": str(tc.id),
                    "type": "function",
                    "function": {
                        "name": str(tc.function.name),
                        "arguments": str(tc.function.arguments or ""),
                    },
                }
                for tc in message.tool_calls
            ]
        usage = getattr(response, "usage", None)
        answered = str(getattr(response, "model", None) or call.model)
        if answered == call.model.split("/", 1)[-1]:
            answered = call.model  # keep the provider prefix the version asked for
        bad_json = _first_invalid_arguments(function_call, tool_calls)
        if bad_json is not None:
            return LLMFailure(
                model=answered,
                error_type="malformed_tool_call",
                error_log=(
                    f"The model called '{bad_json[0]}' with arguments that are not valid JSON "
                    f"({bad_json[1]}); nothing was stored, run again"
                ),
                latency_ms=latency,
                api_response=api_response,
            )
        return LLMResult(
            model=answered,
            content=(message.content or None) if (function_call or tool_calls) else message.content,
            function_call=function_call,
            tool_calls=tool_calls,
            finish_reason=getattr(choice, "finish_reason", None),
            prompt_tokens=getattr(usage, "prompt_tokens", None),
            completion_tokens=getattr(usage, "completion_tokens", None),
            cost=self._cost(call, response),
            latency_ms=latency,
            api_response=api_response,
        )

    def _cost(self, call: LLMCall, response: Any) -> float | None:
        if call.model.startswith(f"{OFFLINE_PROVIDER}/"):
            return 0.0
        hidden = getattr(response, "_hidden_params", None) or {}
        cost = hidden.get("response_cost")
        if cost is None and call.model not in self._unpriced:
            try:
                cost = self._litellm.completion_cost(completion_response=response)
            except Exception:  # LiteLLM raises for models missing from its price table
                if not self._in_price_table(call.model, call.api_base):
                    self._unpriced.add(call.model)
                return None
        return float(cost) if cost is not None else None


def _first_invalid_arguments(
    function_call: dict[str, str] | None, tool_calls: list[dict[str, Any]] | None
) -> tuple[str, str] | None:
    calls = [function_call] if function_call else [tc["function"] for tc in tool_calls or []]
    for call in calls:
        try:
            json.loads(call["arguments"] or "{}")
        except json.JSONDecodeError as exc:
            return call["name"], exc.msg
    return None
