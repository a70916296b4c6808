"""A native stream's frames: the text-only fast path writes exactly what the general
encoder writes, byte for byte."""

from __future__ import annotations

import json

import pytest

from chatmodel_service.llm.types import StreamDelta
from chatmodel_service.runs.stream_run import _delta_event, delta_frame, sse_frame

TEXTS = [
    "",
    "Hello",
    " world",
    'a "quoted" word',
    "back\\slash and \t tab",
    "line one\nline two\r\n",
    "\n\n",  # would end an SSE event if it were not escaped
    "naïve café — 日本語 😀",
    "\u0000 and \u2028",
    "data: [DONE]",
]


@pytest.mark.parametrize("text", TEXTS)
def test_text_delta_frame_is_the_general_frame(text: str) -> None:
    delta = StreamDelta(content=text)
    frame = delta_frame(delta)
    assert frame == sse_frame(_delta_event(delta))
    assert frame.startswith("data: ") and frame.endswith("\n\n")
    body = json.loads(frame.removeprefix("data: "))
    assert body["content"] == text and body["raw_output"] == text
    assert frame.count("\n\n") == 1  # one event, whatever the text holds


@pytest.mark.parametrize(
    "delta",
    [
        StreamDelta(function_call={"name": "get_weather", "arguments": '{"ci'}),
        StreamDelta(
            tool_calls=[
                {
                    "index": 0,
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "f", "arguments": "{}"},
                }
            ]
        ),
        StreamDelta(content="thinking", tool_calls=[{"index": 0, "function": {"arguments": "{"}}]),
        StreamDelta(),
    ],
)
def test_other_deltas_take_the_general_encoder(delta: StreamDelta) -> None:
    assert delta_frame(delta) == sse_frame(_delta_event(delta))
