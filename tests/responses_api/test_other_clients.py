"""Other clients of the Responses API against a real server (the demo chat model on the
offline echo model): the newest openai 3.x SDK and LangChain's ChatOpenAI, each in a venv
of its own (``run_sdk``), and LiteLLM's ``responses()`` in-process."""

from __future__ import annotations

import json
import textwrap
from typing import Any

import litellm

from tests.support.sdks import run_sdk
from tests.support.servers import LiveApp

DEMO = "simple_assistant"
OPENAI_SDK = "openai-3.60.0"
LANGCHAIN_SDK = "langchain-openai-1.7.4"
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The current weather in a place.",
    "parameters": {
        "type": "object",
        "properties": {"location": {"type": "string"}},
        "required": ["location"],
    },
}


def sdk_results(name: str, code: str, base_url: str) -> dict[str, Any]:
    """Run ``code`` in SDK venv ``name`` with BASE (the server's /v1) defined; it prints
    one JSON object per ``OUT `` line, merged into the answer."""
    prelude = f"import json\nBASE = {base_url + '/v1'!r}\nWEATHER = {json.dumps(WEATHER)}\n"
    done = run_sdk(name, prelude + textwrap.dedent(code), {"OPENAI_API_KEY": "x"})
    assert done.returncode == 0, done.stderr + done.stdout
    results: dict[str, Any] = {}
    for line in done.stdout.splitlines():
        if line.startswith("OUT "):
            results.update(json.loads(line[4:]))
    return results


def test_openai_3_sdk(live_app: LiveApp) -> None:
    out = sdk_results(
        OPENAI_SDK,
        """
        import openai
        def out(**kw):
            print("OUT " + json.dumps(kw))
        out(version=openai.__version__)
        client = openai.OpenAI(base_url=BASE, api_key="x", max_retries=0)

        r = client.responses.create(model="simple_assistant", input="Hello there")
        got = client.responses.retrieve(r.id)
        out(create={"id": r.id, "status": r.status, "text": r.output_text},
            retrieve={"id": got.id, "text": got.output_text})

        conv = client.conversations.create()
        first = client.responses.create(model="simple_assistant", conversation=conv.id,
                                        input="first question")
        second = client.responses.create(model="simple_assistant", conversation=conv.id,
                                         input="second question")
        items = client.conversations.items.list(conv.id, order="asc")
        out(conversation={
            "id": conv.id,
            "texts": [first.output_text, second.output_text],
            "items": [[i.type, getattr(i, "role", None),
                       "".join(getattr(c, "text", "") for c in (getattr(i, "content", None) or []))]
                      for i in items.data],
        })

        with client.responses.stream(model="simple_assistant", input="stream me") as stream:
            events = [e.type for e in stream]
            final = stream.get_final_response()
        out(stream={"events": events, "text": final.output_text, "status": final.status})

        call_r = client.responses.create(model="simple_assistant", tools=[WEATHER],
                                         input="What is the weather in Paris?")
        call = [o for o in call_r.output if o.type == "function_call"][0]
        answer = client.responses.create(
            model="simple_assistant", tools=[WEATHER], previous_response_id=call_r.id,
            input=[{"type": "function_call_output", "call_id": call.call_id,
                    "output": "sunny, 21C"}])
        out(tool={"name": call.name, "arguments": json.loads(call.arguments),
                  "text": answer.output_text})
        """,
        live_app.base_url,
    )
    assert out["version"] == "3.60.0"
    assert out["create"]["id"].startswith("resp_")
    assert out["create"]["status"] == "completed"
    assert "Hello there" in out["create"]["text"]
    assert out["retrieve"] == {"id": out["create"]["id"], "text": out["create"]["text"]}

    conversation = out["conversation"]
    assert conversation["id"].startswith("conv_")
    assert "first question" in conversation["texts"][0]
    assert "second question" in conversation["texts"][1]
    messages = [(kind, role) for kind, role, _ in conversation["items"]]
    assert messages == [("message", "user"), ("message", "assistant")] * 2
    assert [text for *_, text in conversation["items"]] == [
        "first question",
        conversation["texts"][0],
        "second question",
        conversation["texts"][1],
    ]

    stream = out["stream"]
    assert stream["events"][0] == "response.created"
    assert stream["events"][-1] == "response.completed"
    assert "response.output_text.delta" in stream["events"]
    assert stream["status"] == "completed"
    assert "stream me" in stream["text"]

    assert out["tool"]["name"] == "get_weather"
    assert out["tool"]["arguments"] == {"location": "Paris"}
    assert "sunny, 21C" in out["tool"]["text"]


def test_langchain_chat_openai(live_app: LiveApp) -> None:
    out = sdk_results(
        LANGCHAIN_SDK,
        """
        import httpx
        from langchain_core.messages import HumanMessage, ToolMessage
        from langchain_openai import ChatOpenAI
        def out(**kw):
            print("OUT " + json.dumps(kw))
        bodies = []
        def log(request):
            if request.method == "POST":
                bodies.append(json.loads(request.content or b"{}"))
        llm = ChatOpenAI(model="simple_assistant", base_url=BASE, api_key="x",
                         use_responses_api=True, max_retries=0,
                         http_client=httpx.Client(event_hooks={"request": [log]}))

        msg = llm.invoke("Hello from LangChain")
        out(invoke={"text": msg.text if isinstance(msg.text, str) else msg.text(),
                    "type": msg.type})
        chunks = list(llm.stream("Stream from LangChain"))
        joined = chunks[0]
        for c in chunks[1:]:
            joined = joined + c
        out(stream={"n": len(chunks),
                    "text": joined.text if isinstance(joined.text, str) else joined.text()})

        def get_weather(location: str) -> str:
            \"\"\"The current weather in a place.\"\"\"
            return "sunny, 21C"
        with_tools = llm.bind_tools([get_weather])
        question = HumanMessage("What is the weather in Paris?")
        ai = with_tools.invoke([question])
        calls = [{"name": c["name"], "args": c["args"]} for c in ai.tool_calls]
        result = ToolMessage(content="sunny, 21C", tool_call_id=ai.tool_calls[0]["id"])
        final = with_tools.invoke([question, ai, result])
        out(tools={"calls": calls,
                   "text": final.text if isinstance(final.text, str) else final.text()},
            bodies=bodies)
        """,
        live_app.base_url,
    )
    assert out["invoke"]["type"] == "ai"
    assert "Hello from LangChain" in out["invoke"]["text"]
    assert out["stream"]["n"] > 1
    assert "Stream from LangChain" in out["stream"]["text"]
    assert out["tools"]["calls"] == [{"name": "get_weather", "args": {"location": "Paris"}}]
    assert "sunny, 21C" in out["tools"]["text"]
    assert all(body["model"] == DEMO for body in out["bodies"])


def test_litellm_responses(live_app: LiveApp) -> None:
    base = f"{live_app.base_url}/v1"
    answer: Any = litellm.responses(
        model=f"openai/{DEMO}", input="Hello via LiteLLM", api_base=base, api_key="x"
    )
    text = "".join(
        part.text
        for item in answer.output
        if item.type == "message"
        for part in item.content
        if part.type == "output_text"
    )
    assert "Hello via LiteLLM" in text
    assert answer.status == "completed"

    stream: Any = litellm.responses(
        model=f"openai/{DEMO}", input="Stream via LiteLLM", api_base=base, api_key="x", stream=True
    )
    events = list(stream)
    types = [event.type for event in events]
    deltas = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    assert "response.output_text.delta" in types
    assert types[-1] == "response.completed"
    assert "Stream via LiteLLM" in deltas
