"""What a response sends the model, through the real LiteLLM over HTTP to a scripted
upstream: the version's system prompt, then the request's instructions, then the stored
conversation; the request's tools, tool choice and sampling fields in the chat API's form.
And what comes back: parallel tool calls as items, a reply cut at max_output_tokens as an
incomplete response."""

from __future__ import annotations

from typing import Any, cast

import openai

from tests.factories import WEATHER_FUNCTION
from tests.support.llm_server import Reply, ScriptedLLMServer, ToolCall, ToolCallsReply
from tests.support.servers import LiveApp, scripted_chat_model

WEATHER_TOOL = {
    "type": "function",
    "name": WEATHER_FUNCTION["name"],
    "description": WEATHER_FUNCTION["description"],
    "parameters": WEATHER_FUNCTION["parameters"],
}
# The SDK's TypedDicts require keys (``strict``) a caller may leave out; sent as given.
TOOLS: Any = [WEATHER_TOOL]
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def test_the_request_reaches_the_model_in_the_chat_apis_form(
    live_app: LiveApp, sdk: openai.OpenAI, llm_server: ScriptedLLMServer
) -> None:
    remote = scripted_chat_model(live_app, llm_server)
    llm_server.enqueue(Reply("First"), Reply('{"city": "Paris"}'))
    first = sdk.responses.create(model=remote, input="Hello", instructions="Answer in French.")
    sdk.responses.create(
        model=remote,
        previous_response_id=first.id,
        input=[{"role": "user", "content": [{"type": "input_text", "text": "Where?"}]}],
        tools=TOOLS,
        tool_choice={"type": "function", "name": "get_weather"},
        temperature=0.25,
        top_p=0.5,
        max_output_tokens=64,
        text=cast(
            Any,
            {"format": {"type": "json_schema", "name": "place", "schema": SCHEMA, "strict": True}},
        ),
    )

    sent_first, sent_second = llm_server.requests
    assert sent_first["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "Hello"},
    ]
    assert sent_second["messages"] == [  # instructions do not carry over
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "First"},
        {"role": "user", "content": "Where?"},
    ]
    assert sent_second["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": WEATHER_FUNCTION["description"],
                "parameters": WEATHER_FUNCTION["parameters"],
            },
        }
    ]
    assert sent_second["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert (sent_second["temperature"], sent_second["top_p"]) == (0.25, 0.5)
    assert sent_second["max_tokens"] == 64
    assert sent_second["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "place", "schema": SCHEMA, "strict": True},
    }


def test_parallel_tool_calls_are_items_and_their_outputs_go_back_together(
    live_app: LiveApp, sdk: openai.OpenAI, llm_server: ScriptedLLMServer
) -> None:
    remote = scripted_chat_model(live_app, llm_server)
    calls = (
        ToolCall("call_a", "get_weather", '{"location": "Paris"}'),
        ToolCall("call_b", "get_weather", '{"location": "Rome"}'),
    )
    llm_server.enqueue(ToolCallsReply(calls), Reply("Paris 20, Rome 25."))
    with sdk.responses.stream(
        model=remote,
        input="Weather in Paris and Rome?",
        tools=TOOLS,
    ) as stream:
        kinds = [event.type for event in stream]
        asked = stream.get_final_response()
    assert [(o.type, getattr(o, "call_id", None)) for o in asked.output] == [
        ("function_call", "call_a"),
        ("function_call", "call_b"),
    ]
    assert kinds.count("response.output_item.added") == 2
    assert kinds.count("response.function_call_arguments.done") == 2
    assert kinds[-1] == "response.completed"

    answer = sdk.responses.create(
        model=remote,
        previous_response_id=asked.id,
        tools=TOOLS,
        input=[
            {"type": "function_call_output", "call_id": "call_a", "output": "20"},
            {"type": "function_call_output", "call_id": "call_b", "output": "25"},
        ],
    )
    assert answer.output_text == "Paris 20, Rome 25."
    sent = llm_server.requests[-1]["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool", "tool"]
    assert [c["id"] for c in sent[2]["tool_calls"]] == ["call_a", "call_b"]
    assert [(m["tool_call_id"], m["content"]) for m in sent[3:]] == [
        ("call_a", "20"),
        ("call_b", "25"),
    ]


def test_a_reply_cut_at_max_output_tokens_is_incomplete(
    live_app: LiveApp, sdk: openai.OpenAI, llm_server: ScriptedLLMServer
) -> None:
    remote = scripted_chat_model(live_app, llm_server)
    llm_server.enqueue(Reply("Once upon a", finish_reason="length"))
    cut = sdk.responses.create(model=remote, input="Tell a story", max_output_tokens=3)
    assert (cut.status, cut.output_text) == ("incomplete", "Once upon a")
    assert cut.incomplete_details is not None
    assert cut.incomplete_details.reason == "max_output_tokens"
    assert sdk.responses.retrieve(cut.id).status == "incomplete"

    llm_server.enqueue(Reply("Once upon a", finish_reason="length"))
    with sdk.responses.stream(model=remote, input="Tell a story", max_output_tokens=3) as stream:
        kinds = [event.type for event in stream]
    assert kinds[-1] == "response.incomplete"
