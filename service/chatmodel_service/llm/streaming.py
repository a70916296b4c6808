"""Reading LiteLLM stream chunks into ``StreamDelta`` values."""

from __future__ import annotations

from typing import Any

from chatmodel_service.llm.types import StreamDelta


def _function_fragment(function: Any) -> dict[str, str]:
    fragment: dict[str, str] = {"arguments": str(getattr(function, "arguments", None) or "")}
    name = getattr(function, "name", None)
    if name:
        fragment["name"] = str(name)
    return fragment


def delta_of(chunk: Any) -> StreamDelta | None:
    """The chunk's delta, or None for chunks that carry nothing for the caller (usage only)."""
    choices = getattr(chunk, "choices", None) or []
    if not choices:
        return None
    delta = getattr(choices[0], "delta", None)
    if delta is None:
        return None
    content = getattr(delta, "content", None) or None
    function_call = None
    if getattr(delta, "function_call", None) is not None:
        function_call = _function_fragment(delta.function_call)
    tool_calls = None
    if getattr(delta, "tool_calls", None):
        tool_calls = []
        for position, call in enumerate(delta.tool_calls):
            piece: dict[str, Any] = {
                "index": int(getattr(call, "index", None) or position),
                "function": _function_fragment(getattr(call, "function", None)),
            }
            if getattr(call, "id", None):
                piece["id"] = str(call.id)
                piece["type"] = "function"
            tool_calls.append(piece)
    if content is None and function_call is None and tool_calls is None:
        return None
    return StreamDelta(content=content, function_call=function_call, tool_calls=tool_calls)
