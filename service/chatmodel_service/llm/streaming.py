"""Reading LiteLLM stream chunks into ``StreamDelta`` values, and reading streams past
LiteLLM's per-chunk wrapper where it only repeats work."""

from __future__ import annotations

from typing import Any

import httpx

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


class ParsedStream:
    """A LiteLLM stream read from its provider parser, past LiteLLM's per-chunk wrapper.

    With LiteLLM's own HTTP handler (the server's default transport), an OpenAI-format
    stream is parsed into ``ModelResponseStream`` chunks by the provider's parser, and
    ``CustomStreamWrapper`` then passes each through its generic path again: provider
    dispatch, a re-dump of the chunk, the running text, post-call rules, and at the end
    a second assembly and cost for its success log, none of which a relay uses (the
    gateway assembles and prices the reply itself). Read here instead:

    * the chunks are the parser's, as the wrapper would have passed them on (its end
      marker, which carries nothing, is skipped);
    * an error while reading is mapped by the wrapper itself, as when it reads, so
      ``llm.outcomes`` sees the same exceptions on either path;
    * a connection dropped after the finish reason ends the stream, as the wrapper
      treats it (the reply was complete).

    ``tests/llm/test_stream_source.py`` holds both paths to the same events and outcomes.
    """

    def __init__(self, wrapper: Any, parsed: Any) -> None:
        from litellm.constants import LITELLM_MAX_STREAMING_DURATION_SECONDS

        self._wrapper = wrapper
        self._parsed = parsed.__aiter__()
        self._chunk_type: Any = _model_response_stream()
        # LiteLLM's cap on a stream's length (unset by default), checked as it does.
        self._capped = LITELLM_MAX_STREAMING_DURATION_SECONDS is not None
        self._finished = False

    def __aiter__(self) -> ParsedStream:
        return self

    async def __anext__(self) -> Any:
        while True:
            try:
                if self._capped:
                    self._wrapper._check_max_streaming_duration()
                chunk = await self._parsed.__anext__()
            except StopAsyncIteration:
                raise
            except (httpx.ReadError, httpx.RemoteProtocolError) as exc:
                if self._finished:
                    raise StopAsyncIteration from None
                self._wrapper._handle_stream_fallback_error(exc)
            except Exception as exc:
                self._wrapper._handle_stream_fallback_error(exc)
            if isinstance(chunk, self._chunk_type):
                choices = chunk.choices
                if choices and choices[0].finish_reason:
                    self._finished = True
                return chunk


def _model_response_stream() -> Any:
    from litellm.types.utils import ModelResponseStream

    return ModelResponseStream


def _openai_parser() -> Any:
    from litellm.llms.openai.chat.gpt_transformation import (
        OpenAIChatCompletionStreamingHandler,
    )

    return OpenAIChatCompletionStreamingHandler


def stream_source(response: Any, *, past_wrapper: bool = True) -> Any:
    """What to read the chunks of ``response`` (``acompletion(stream=True)``) from: its
    OpenAI-format parser when LiteLLM's own handler made it (``ParsedStream``), else
    the wrapper itself (the OpenAI SDK transport, other providers, the offline model)."""
    from litellm.litellm_core_utils.streaming_handler import CustomStreamWrapper

    parsed = getattr(response, "completion_stream", None)
    if (
        past_wrapper
        and type(response) is CustomStreamWrapper
        and isinstance(parsed, _openai_parser())
    ):
        return ParsedStream(response, parsed)
    return response
