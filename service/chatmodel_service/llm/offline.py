"""The built-in offline model: deterministic, no network, no keys.

``chatmodel-offline/echo`` behaves like a tiny, predictable assistant so a first
conversation (including a function-call round trip) works on a fresh machine:

* newest message from the user and functions/tools offered: it calls one of them
  (the one whose name the message mentions, else the first) with arguments taken
  from the message;
* newest message a function/tool result: it answers with that result;
* otherwise it echoes the newest user message;
* a summary request (``SUMMARY_REQUEST``, ``runs.summaries``) gets a digest: the previous
  summary, then each new turn's role and first words, within ``max_tokens``.

The decision logic is plain Python (``offline_reply``); ``OfflineModel`` adapts it to
LiteLLM's custom-provider interface so it runs through the same gateway as real models.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from litellm import CustomLLM, ModelResponse
from litellm.types.utils import Message, Usage

from chatmodel_service.llm import OFFLINE_MODEL, SUMMARY_REQUEST

_CAPITALISED_RUN = re.compile(r"(?:[A-Z][\w'-]*)(?:\s+[A-Z][\w'-]*)*")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


@dataclass(frozen=True)
class OfflineReply:
    content: str | None = None
    function_call: dict[str, str] | None = None
    tool_calls: list[dict[str, Any]] | None = None

    @property
    def finish_reason(self) -> str:
        if self.function_call is not None:
            return "function_call"
        return "tool_calls" if self.tool_calls else "stop"


def count_words(text: str | None) -> int:
    return len(text.split()) if text else 0


def _text_value(text: str) -> str:
    """The last capitalised phrase that is not the sentence's first word, else the text."""
    body = text.strip()
    candidates = [m for m in _CAPITALISED_RUN.finditer(body) if m.start() > 0]
    if candidates:
        return candidates[-1].group(0)
    return body.rstrip("?.!")


def _argument_for(schema: dict[str, Any], text: str) -> Any:
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        lowered = text.lower()
        for option in schema["enum"]:
            if str(option).lower() in lowered:
                return option
        return schema["enum"][0]
    kind = schema.get("type")
    if kind in ("number", "integer"):
        found = _NUMBER.search(text)
        number = float(found.group(0)) if found else 0.0
        return int(number) if kind == "integer" else number
    if kind == "boolean":
        return False
    if kind == "array":
        return []
    if kind == "object":
        return {}
    return _text_value(text)


def _arguments(parameters: dict[str, Any] | None, text: str) -> str:
    properties: dict[str, Any] = (parameters or {}).get("properties") or {}
    required = (parameters or {}).get("required") or list(properties)
    args = {name: _argument_for(properties.get(name) or {}, text) for name in required}
    return json.dumps(args)


def _choose(functions: list[dict[str, Any]], text: str) -> dict[str, Any]:
    """The function the text names (the longest name, so "get_weather_forecast" is not
    taken for "get_weather"), else the first."""
    lowered = text.lower()

    def named(function: dict[str, Any]) -> bool:
        name = str(function.get("name", "")).lower()
        return bool(name) and (name in lowered or name.replace("_", " ") in lowered)

    mentioned = [f for f in functions if named(f)]
    if mentioned:
        return max(mentioned, key=lambda f: len(str(f["name"])))
    return functions[0]


def _called_name(conversation: list[dict[str, Any]], tool_call_id: Any) -> str | None:
    """The function name of the tool call that ``tool_call_id`` answers."""
    for message in reversed(conversation):
        for call in message.get("tool_calls") or []:
            if call.get("id") == tool_call_id:
                return str(call.get("function", {}).get("name") or "") or None
    return None


SUMMARY_WORDS = 2  # words of each turn a digest keeps


def offline_summary(request: str, max_tokens: int | None = None) -> str:
    """A summary request's digest: the previous summary, then ``role: first words`` of
    each new turn, joined by ``; ``; over twice ``max_tokens`` characters, only the newest
    words are kept (after ``...``), so it fits what the summary is given."""
    _, _, rest = request.partition("Previous summary:\n")
    previous, _, turns = rest.partition("\n\nNew turns:\n")
    parts = [previous.strip()] if previous.strip() not in ("", "(none)") else []
    for line in turns.splitlines():
        role, _, text = line.partition(": ")
        parts.append(f"{role}: {' '.join(text.split()[:SUMMARY_WORDS])}")
    digest = "; ".join(parts)
    limit = 2 * max_tokens if max_tokens else None  # characters: a token is 2 or more
    if limit is not None and len(digest) > limit:
        digest = "... " + digest[len(digest) - limit + 4 :].split(" ", 1)[-1]
    return digest


def offline_reply(
    messages: list[dict[str, Any]],
    functions: list[dict[str, Any]] | None,
    tools: list[dict[str, Any]] | None,
    max_tokens: int | None = None,
) -> OfflineReply:
    """Decide the offline model's reply to ``messages``."""
    conversation = [m for m in messages if m.get("role") != "system"]
    if not conversation:
        return OfflineReply(content="Hello! Send me a message and I will echo it.")
    newest = conversation[-1]
    text = str(newest.get("content") or "")
    if newest.get("role") == "user" and text.startswith(SUMMARY_REQUEST):
        return OfflineReply(content=offline_summary(text, max_tokens))
    if newest.get("role") in ("function", "tool"):
        name = newest.get("name") or _called_name(conversation, newest.get("tool_call_id"))
        return OfflineReply(content=f"{name or 'the tool'} returned: {text}")
    offered = list(functions or []) or [t["function"] for t in tools or [] if "function" in t]
    if newest.get("role") == "user" and offered:
        chosen = _choose(offered, text)
        call = {
            "name": str(chosen["name"]),
            "arguments": _arguments(chosen.get("parameters"), text),
        }
        if functions:
            return OfflineReply(function_call=call)
        digest = hashlib.sha256(f"{len(messages)}:{text}".encode()).hexdigest()[:24]
        return OfflineReply(
            tool_calls=[{"id": f"call_{digest}", "type": "function", "function": call}]
        )
    users = [m for m in conversation if m.get("role") == "user"]
    return OfflineReply(content=str(users[-1].get("content") or "") if users else "")


def _stream_pieces(text: str) -> list[str]:
    return re.findall(r"\S+\s*|\s+", text) or [""]


class OfflineModel(CustomLLM):  # type: ignore[misc]
    """LiteLLM custom provider serving ``chatmodel-offline/*``."""

    def _reply(
        self, messages: list[dict[str, Any]], optional_params: dict[str, Any]
    ) -> OfflineReply:
        max_tokens = optional_params.get("max_tokens")
        return offline_reply(
            messages,
            optional_params.get("functions"),
            optional_params.get("tools"),
            max_tokens if isinstance(max_tokens, int) else None,
        )

    async def acompletion(
        self,
        model: str,
        messages: list[dict[str, Any]],
        model_response: ModelResponse,
        optional_params: dict[str, Any],
        **_: Any,
    ) -> ModelResponse:
        reply = self._reply(messages, optional_params)
        choice = model_response.choices[0]
        choice.message = Message(
            content=reply.content,
            role="assistant",
            function_call=reply.function_call,
            tool_calls=reply.tool_calls,
        )
        choice.finish_reason = reply.finish_reason
        model_response.model = OFFLINE_MODEL
        prompt = sum(count_words(str(m.get("content") or "")) for m in messages)
        completion = count_words(reply.content) + (1 if reply.content is None else 0)
        model_response.usage = Usage(
            prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
        )
        return model_response

    async def astreaming(
        self,
        model: str,
        messages: list[dict[str, Any]],
        optional_params: dict[str, Any],
        **_: Any,
    ) -> AsyncIterator[dict[str, Any]]:
        reply = self._reply(messages, optional_params)
        prompt = sum(count_words(str(m.get("content") or "")) for m in messages)
        calls = reply.tool_calls or (
            [{"id": "call_offline", "type": "function", "function": reply.function_call}]
            if reply.function_call
            else []
        )
        pieces = _stream_pieces(reply.content) if reply.content is not None else []
        for piece in pieces:
            yield {
                "text": piece,
                "is_finished": False,
                "finish_reason": "",
                "usage": None,
                "index": 0,
                "tool_use": None,
            }
        for index, call in enumerate(calls):
            yield {
                "text": "",
                "is_finished": False,
                "finish_reason": "",
                "usage": None,
                "index": 0,
                "tool_use": {**call, "index": index},
            }
        completion = len(pieces) or 1
        yield {
            "text": "",
            "is_finished": True,
            "finish_reason": reply.finish_reason,
            "index": 0,
            "tool_use": None,
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
        }
