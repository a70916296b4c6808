"""The Responses and Conversations routes over HTTP (the app in process, SQLite and
PostgreSQL): conversations are sessions, items are their messages, and what the native
API sees of them; binding a conversation to a chat model; item pages and deletion;
validation, auth and project isolation; usage and metrics counting these runs."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.factories import WEATHER_FUNCTION, add_messages, make_chat_model, make_session
from tests.support.auth import AuthWorld, keyed

WEATHER_TOOL = {
    "type": "function",
    "name": WEATHER_FUNCTION["name"],
    "description": WEATHER_FUNCTION["description"],
    "parameters": WEATHER_FUNCTION["parameters"],
}


def openai_error(response: httpx.Response, status: int, code: str | None, param: str | None) -> str:
    """The error answer in OpenAI's shape; returns its message."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["code"], error["param"]) == (code, param), error
    assert error["message"]
    return str(error["message"])


async def respond(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post("/v1/responses", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def conversation(client: httpx.AsyncClient, **body: Any) -> str:
    response = await client.post("/v1/conversations", json=body)
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


async def items(client: httpx.AsyncClient, conv: str, **params: Any) -> dict[str, Any]:
    response = await client.get(f"/v1/conversations/{conv}/items", params=params)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


def session_of(conv: str) -> str:
    return str(uuid.UUID(conv.removeprefix("conv_")))


async def native_messages(client: httpx.AsyncClient, session: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/sessions/{session}/messages", params={"limit": 200})
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


@pytest.fixture
async def assistant(client: httpx.AsyncClient) -> str:
    await make_chat_model(client, "assistant")
    return "assistant"


# -- conversations are sessions -----------------------------------------------------------


async def test_a_conversation_is_a_session_with_its_items_as_messages(
    client: httpx.AsyncClient, assistant: str
) -> None:
    made = await client.post(
        "/v1/conversations",
        json={
            "items": [
                {"type": "message", "role": "user", "content": "Hi there"},
                {"role": "developer", "content": [{"type": "input_text", "text": "Be kind."}]},
            ],
            "metadata": {"topic": "demo"},
        },
    )
    assert made.status_code == 200, made.text
    body = made.json()
    assert body["object"] == "conversation" and body["id"].startswith("conv_")
    assert body["metadata"] == {"topic": "demo"}
    session = session_of(body["id"])

    native = await client.get(f"/v1/sessions/{session}")
    assert native.status_code == 200, native.text
    assert (native.json()["chat_model"], native.json()["metadata"]) == (
        assistant,
        {"topic": "demo"},
    )
    assert [(m["role"], m["content"]) for m in await native_messages(client, session)] == [
        ("user", "Hi there"),
        ("system", "Be kind."),
    ]
    fetched = await client.get(f"/v1/conversations/{body['id']}")
    assert fetched.json() == body

    updated = await client.post(f"/v1/conversations/{body['id']}", json={"metadata": {"a": "b"}})
    assert updated.status_code == 200 and updated.json()["metadata"] == {"a": "b"}
    assert (await client.get(f"/v1/sessions/{session}")).json()["metadata"] == {"a": "b"}

    deleted = await client.delete(f"/v1/conversations/{body['id']}")
    assert deleted.json() == {"id": body["id"], "object": "conversation.deleted", "deleted": True}
    assert (await client.get(f"/v1/sessions/{session}")).status_code == 404
    gone = await client.get(f"/v1/conversations/{body['id']}")
    openai_error(gone, 404, "conversation_not_found", "conversation_id")


async def test_a_native_session_is_continued_by_its_uuid_or_conversation_id(
    client: httpx.AsyncClient, assistant: str
) -> None:
    session = await make_session(client, assistant)
    await add_messages(client, session, {"role": "user", "content": "Stored natively"})
    first = await respond(client, conversation=session, input="Second turn")
    conv = f"conv_{uuid.UUID(session).hex}"
    assert first["conversation"] == {"id": conv}
    assert first["chatmodel"]["session_uuid"] == session
    second = await respond(client, conversation={"id": conv}, input="Third turn")
    assert second["output"][0]["content"][0]["text"] == "Third turn"
    page = await items(client, conv, order="asc")
    assert [(i["role"], i["content"][0]["text"]) for i in page["data"]] == [
        ("user", "Stored natively"),
        ("user", "Second turn"),
        ("assistant", "Second turn"),
        ("user", "Third turn"),
        ("assistant", "Third turn"),
    ]
    assert [i["content"][0]["type"] for i in page["data"]] == [
        "input_text",
        "input_text",
        "output_text",
        "input_text",
        "output_text",
    ]
    runs = (await client.get(f"/v1/sessions/{session}/runs")).json()["data"]
    assert {f"resp_{uuid.UUID(r['uuid']).hex}" for r in runs} == {first["id"], second["id"]}


async def test_a_native_run_is_seen_as_a_response(
    client: httpx.AsyncClient, assistant: str
) -> None:
    session = await make_session(client, assistant)
    await add_messages(client, session, {"role": "user", "content": "Native question"})
    ran = await client.post(f"/v1/sessions/{session}/run", json={})
    assert ran.status_code == 200, ran.text
    run_uuid = uuid.UUID(ran.json()["detail"]["run_uuid"])
    shown = await client.get(f"/v1/responses/resp_{run_uuid.hex}")
    assert shown.status_code == 200, shown.text
    body = shown.json()
    assert (body["status"], body["model"]) == ("completed", assistant)
    assert body["output"][0]["content"][0]["text"] == "Native question"
    assert body["output"][0]["id"] == f"msg_{uuid.UUID(ran.json()['detail']['message_uuid']).hex}"
    inputs = await client.get(f"/v1/responses/resp_{run_uuid.hex}/input_items")
    assert [i["content"][0]["text"] for i in inputs.json()["data"]] == ["Native question"]


async def test_a_conversation_takes_its_first_responses_chat_model_then_keeps_it(
    client: httpx.AsyncClient, assistant: str
) -> None:
    await make_chat_model(client, "other", system_prompt="Other.")
    conv = await conversation(client)  # held on the oldest published chat model
    assert (await client.get(f"/v1/sessions/{session_of(conv)}")).json()["chat_model"] == assistant
    answer = await respond(client, model="other", conversation=conv, input="Hello")
    assert answer["model"] == "other" and answer["chatmodel"]["chat_model"] == "other"
    native = (await client.get(f"/v1/sessions/{session_of(conv)}")).json()
    assert native["chat_model"] == "other"

    refused = await client.post(
        "/v1/responses", json={"model": assistant, "conversation": conv, "input": "Again"}
    )
    message = openai_error(refused, 400, "invalid_input", "model")
    assert "other" in message and "version 1" in message
    same = await respond(client, model="other", conversation=conv, input="Again")
    assert same["chatmodel"]["session_uuid"] == session_of(conv)


async def test_a_conversation_named_with_a_model_is_held_on_it(
    client: httpx.AsyncClient, assistant: str
) -> None:
    await make_chat_model(client, "other")
    conv = await conversation(client, model="other")
    assert (await client.get(f"/v1/sessions/{session_of(conv)}")).json()["chat_model"] == "other"
    unknown = await client.post("/v1/conversations", json={"model": "nope"})
    openai_error(unknown, 404, "model_not_found", "model")


async def test_a_conversation_needs_a_published_chat_model(client: httpx.AsyncClient) -> None:
    refused = await client.post("/v1/conversations", json={})
    openai_error(refused, 400, "invalid_input", "model")


# -- items ---------------------------------------------------------------------------------


async def tool_conversation(client: httpx.AsyncClient) -> tuple[str, list[dict[str, Any]]]:
    """A conversation of 7 items: a user message, a reply calling two tools, their two
    outputs, the answer, and another user message with its reply."""
    conv = await conversation(
        client,
        items=[
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {
                "type": "function_call",
                "call_id": "call_1",
                "name": "get_weather",
                "arguments": '{"location": "Paris"}',
            },
            {
                "type": "function_call",
                "call_id": "call_2",
                "name": "get_weather",
                "arguments": '{"location": "Rome"}',
            },
            {"type": "function_call_output", "call_id": "call_1", "output": "20 degrees"},
            {"type": "function_call_output", "call_id": "call_2", "output": "25 degrees"},
            {"role": "assistant", "content": "Paris 20, Rome 25."},
            {"role": "user", "content": "Thanks"},
        ],
    )
    every = (await items(client, conv, order="asc", limit=100))["data"]
    return conv, every


async def test_items_show_calls_and_outputs_and_page_both_ways(
    client: httpx.AsyncClient, assistant: str
) -> None:
    conv, every = await tool_conversation(client)
    assert [i["type"] for i in every] == [
        "message",
        "function_call",
        "function_call",
        "function_call_output",
        "function_call_output",
        "message",
        "message",
    ]
    assert [i.get("call_id") for i in every[1:5]] == ["call_1", "call_2", "call_1", "call_2"]
    assert every[1]["id"].endswith("_0") and every[2]["id"].endswith("_1")
    # the two calls are one stored message
    assert len(await native_messages(client, session_of(conv))) == 6

    for order, expected in (("asc", every), ("desc", list(reversed(every)))):
        seen: list[dict[str, Any]] = []
        after = None
        pages = 0
        while True:
            params: dict[str, Any] = {"order": order, "limit": 3}
            if after is not None:
                params["after"] = after
            page = await items(client, conv, **params)
            pages += 1
            assert page["first_id"] == page["data"][0]["id"]
            assert page["last_id"] == page["data"][-1]["id"]
            seen.extend(page["data"])
            if not page["has_more"]:
                break
            after = page["last_id"]
        assert [i["id"] for i in seen] == [i["id"] for i in expected]
        assert pages == 3
    default = await items(client, conv)
    assert [i["id"] for i in default["data"]] == [i["id"] for i in reversed(every)]
    assert default["has_more"] is False

    one = await client.get(f"/v1/conversations/{conv}/items/{every[2]['id']}")
    assert one.status_code == 200 and one.json() == every[2]
    for missing in (f"msg_{uuid.uuid4().hex}", "nonsense", every[1]["id"][:-1] + "9"):
        absent = await client.get(f"/v1/conversations/{conv}/items/{missing}")
        openai_error(absent, 404, "item_not_found", "item_id")
    bad_after = await client.get(f"/v1/conversations/{conv}/items", params={"after": "msg_x"})
    openai_error(bad_after, 404, "item_not_found", "after")
    for limit in (0, 101):
        refused = await client.get(f"/v1/conversations/{conv}/items", params={"limit": limit})
        assert refused.status_code == 400, refused.text


async def test_adding_items_stores_them_after_the_history(
    client: httpx.AsyncClient, assistant: str
) -> None:
    conv = await conversation(client, items=[{"role": "user", "content": "One"}])
    added = await client.post(
        f"/v1/conversations/{conv}/items",
        json={
            "items": [{"role": "assistant", "content": "Two"}, {"role": "user", "content": "Three"}]
        },
    )
    assert added.status_code == 200, added.text
    page = added.json()
    assert [i["content"][0]["text"] for i in page["data"]] == ["Two", "Three"]
    assert page["has_more"] is False
    stored = await native_messages(client, session_of(conv))
    assert [(m["seq"], m["content"]) for m in stored] == [(1, "One"), (2, "Two"), (3, "Three")]


async def test_deleting_a_call_hides_it_with_its_outputs_from_reads_and_the_model(
    client: httpx.AsyncClient, assistant: str
) -> None:
    conv, every = await tool_conversation(client)
    deleted = await client.delete(f"/v1/conversations/{conv}/items/{every[1]['id']}")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["id"] == conv and deleted.json()["object"] == "conversation"
    left = (await items(client, conv, order="asc"))["data"]
    assert [i["id"] for i in left] == [every[0]["id"], every[5]["id"], every[6]["id"]]
    native = await native_messages(client, session_of(conv))
    assert [(m["seq"], m["deleted"], m["superseded"]) for m in native] == [
        (1, False, False),
        (2, True, True),
        (3, True, True),
        (4, True, True),
        (5, False, False),
        (6, False, False),
    ]
    answer = await respond(client, conversation=conv, input="And now?")
    runs = (await client.get(f"/v1/sessions/{session_of(conv)}/runs")).json()["data"]
    assert answer["output"][0]["content"][0]["text"] == "And now?"
    assert runs[-1]["messages_sent"] == 4  # 3 live items and the new input
    again = await client.delete(f"/v1/conversations/{conv}/items/{every[1]['id']}")
    openai_error(again, 404, "item_not_found", "item_id")


async def test_deleting_an_output_takes_its_call_and_the_calls_other_output(
    client: httpx.AsyncClient, assistant: str
) -> None:
    conv, every = await tool_conversation(client)
    deleted = await client.delete(f"/v1/conversations/{conv}/items/{every[4]['id']}")
    assert deleted.status_code == 200, deleted.text
    left = (await items(client, conv, order="asc"))["data"]
    assert [i["id"] for i in left] == [every[0]["id"], every[5]["id"], every[6]["id"]]


async def test_deleting_a_message_hides_only_it(client: httpx.AsyncClient, assistant: str) -> None:
    conv, every = await tool_conversation(client)
    deleted = await client.delete(f"/v1/conversations/{conv}/items/{every[6]['id']}")
    assert deleted.status_code == 200, deleted.text
    left = (await items(client, conv, order="asc", limit=100))["data"]
    assert [i["id"] for i in left] == [i["id"] for i in every[:6]]
    assert [m["seq"] for m in await native_messages(client, session_of(conv))] == [1, 2, 3, 4, 5, 6]
    added = await client.post(
        f"/v1/conversations/{conv}/items", json={"items": [{"role": "user", "content": "New"}]}
    )
    assert added.status_code == 200
    assert (await native_messages(client, session_of(conv)))[-1]["seq"] == 7  # seq 6 stays taken


# -- responses -------------------------------------------------------------------------------


async def test_instructions_are_sent_not_stored_and_a_developer_message_is_stored(
    client: httpx.AsyncClient, assistant: str
) -> None:
    answer = await respond(
        client,
        model=assistant,
        instructions="Answer in French.",
        input=[
            {"role": "developer", "content": "Keep it short."},
            {"role": "user", "content": [{"type": "input_text", "text": "Hello"}]},
        ],
    )
    assert answer["instructions"] == "Answer in French."
    session = answer["chatmodel"]["session_uuid"]
    stored = await native_messages(client, session)
    assert [(m["role"], m["content"]) for m in stored] == [
        ("system", "Keep it short."),
        ("user", "Hello"),
        ("assistant", "Hello"),
    ]
    runs = (await client.get(f"/v1/sessions/{session}/runs")).json()["data"]
    assert runs[0]["messages_sent"] == 2


async def test_a_response_echoes_its_request(client: httpx.AsyncClient, assistant: str) -> None:
    answer = await respond(
        client,
        model=assistant,
        input="Hi",
        temperature=0.5,
        top_p=0.9,
        max_output_tokens=100,
        metadata={"ticket": "42"},
        tools=[WEATHER_TOOL],
        tool_choice="none",
        truncation="auto",
        user="user-7",
    )
    assert answer["object"] == "response" and answer["id"].startswith("resp_")
    assert (answer["temperature"], answer["top_p"], answer["max_output_tokens"]) == (0.5, 0.9, 100)
    assert (answer["metadata"], answer["tool_choice"], answer["truncation"]) == (
        {"ticket": "42"},
        "none",
        "auto",
    )
    assert answer["tools"] == [WEATHER_TOOL]
    assert answer["user"] == "user-7"
    assert answer["conversation"] is None and answer["previous_response_id"] is None
    fetched = (await client.get(f"/v1/responses/{answer['id']}")).json()
    for key in ("id", "model", "output", "usage", "tools", "metadata", "truncation", "user"):
        assert fetched[key] == answer[key], key
    session = await client.get(f"/v1/sessions/{answer['chatmodel']['session_uuid']}")
    assert session.json()["metadata"] == {"user_id": "user-7"}


async def test_store_false_stores_only_the_run_record(
    client: httpx.AsyncClient, assistant: str
) -> None:
    before = (await client.get("/v1/sessions")).json()["data"]
    answer = await respond(client, model=assistant, input="Keep nothing", store=False)
    assert answer["output"][0]["content"][0]["text"] == "Keep nothing"
    assert answer["store"] is False and answer["chatmodel"]["session_uuid"] is None
    assert (await client.get("/v1/sessions")).json()["data"] == before
    openai_error(
        await client.get(f"/v1/responses/{answer['id']}"), 404, "response_not_found", "response_id"
    )
    continued = await client.post(
        "/v1/responses",
        json={"model": assistant, "previous_response_id": answer["id"], "input": "x"},
    )
    openai_error(continued, 404, "response_not_found", "previous_response_id")
    usage = (await client.get("/v1/usage", params={"chat_model": assistant})).json()
    assert usage["total"]["runs"] == 1


async def test_store_false_can_continue_a_stored_response_without_storing(
    client: httpx.AsyncClient, assistant: str
) -> None:
    first = await respond(client, model=assistant, input="Remember me")
    session = first["chatmodel"]["session_uuid"]
    second = await respond(client, previous_response_id=first["id"], input="Again", store=False)
    assert second["output"][0]["content"][0]["text"] == "Again"
    assert len(await native_messages(client, session)) == 2


async def test_usage_and_metrics_count_responses_as_runs(
    client: httpx.AsyncClient, assistant: str
) -> None:
    await respond(client, model=assistant, input="One")
    await respond(client, model=assistant, input="Two", store=False)
    usage = (await client.get("/v1/usage", params={"chat_model": assistant})).json()
    assert usage["total"]["runs"] == 2 and usage["total"]["errors"] == 0
    assert usage["total"]["total_tokens"] > 0
    metrics = (await client.get("/metrics")).text
    line = next(
        line
        for line in metrics.splitlines()
        if line.startswith("chatmodel_runs_total{") and f'chat_model="{assistant}"' in line
    )
    assert line.endswith(" 2.0"), line


async def test_a_prompt_that_does_not_fit_is_refused_unless_truncation_is_auto(
    client: httpx.AsyncClient,
) -> None:
    await make_chat_model(client, "small", context_window=500)
    conv = await conversation(client, model="small")
    long, cap = "word " * 60, {"max_output_tokens": 100}
    for _ in range(3):
        await respond(client, conversation=conv, input=long, truncation="auto", **cap)
    refused = await client.post("/v1/responses", json={"conversation": conv, "input": long, **cap})
    openai_error(refused, 400, "context_length_exceeded", None)
    runs = (await client.get(f"/v1/sessions/{session_of(conv)}/runs")).json()["data"]
    assert runs[-1]["status"] == "failed" and runs[-1]["error_type"] == "context_window_exceeded"
    fitted = await respond(client, conversation=conv, input="short", truncation="auto", **cap)
    runs = (await client.get(f"/v1/sessions/{session_of(conv)}/runs")).json()["data"]
    assert fitted["status"] == "completed" and runs[-1]["messages_dropped"] > 0


# -- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ({"input": "hi"}, "invalid_input", "model"),
        ({"model": "nope", "input": "hi"}, "model_not_found", "model"),
        (
            {
                "model": "assistant",
                "input": [{"role": "user", "content": [{"type": "input_image"}]}],
            },
            "invalid_input",
            "input.0.content.0.type",
        ),
        (
            {"model": "assistant", "input": [{"type": "item_reference", "id": "x"}]},
            "invalid_input",
            "input.0.type",
        ),
        (
            {"model": "assistant", "input": [{"role": "robot", "content": "x"}]},
            "invalid_input",
            "input.0.role",
        ),
        (
            {"model": "assistant", "input": [{"type": "function_call", "name": "f"}]},
            "invalid_input",
            "input.0.call_id",
        ),
        (
            {"model": "assistant", "input": "hi", "tools": [{"type": "file_search"}]},
            "invalid_input",
            "tools.0.type",
        ),
        (
            {"model": "assistant", "input": "hi", "background": True, "store": False},
            "invalid_input",
            "store",
        ),
        (
            {"model": "assistant", "input": "hi", "tools": [{"type": "function"}]},
            "invalid_input",
            "tools.0.name",
        ),
        (
            {"model": "assistant", "input": "hi", "text": {"format": {"type": "json_schema"}}},
            "invalid_input",
            "text.format.schema",
        ),
        (
            {
                "model": "assistant",
                "input": "hi",
                "conversation": "conv_1",
                "previous_response_id": "r",
            },
            "invalid_input",
            "previous_response_id",
        ),
        (
            {"model": "assistant", "input": "hi", "conversation": "conv_x", "store": False},
            "invalid_input",
            "store",
        ),
        (
            {"model": "assistant", "input": "hi", "conversation": "conv_nope"},
            "conversation_not_found",
            "conversation",
        ),
        (
            {"model": "assistant", "input": "hi", "previous_response_id": "resp_nope"},
            "response_not_found",
            "previous_response_id",
        ),
        (
            {"prompt": {"id": "assistant", "version": "x"}, "input": "hi"},
            "invalid_input",
            "prompt.version",
        ),
        (
            {"prompt": {"id": "assistant", "version": "9"}, "input": "hi"},
            "version_not_found",
            "prompt.version",
        ),
        (
            {"model": "other", "prompt": {"id": "assistant"}, "input": "hi"},
            "invalid_input",
            "model",
        ),
        (
            {"model": "assistant", "input": "hi", "temperature": 3},
            "validation_error",
            "temperature",
        ),
        (
            {"model": "assistant", "input": "hi", "truncation": "sometimes"},
            "validation_error",
            "truncation",
        ),
        (
            {"model": "assistant", "input": "hi", "metadata": {str(i): "v" for i in range(17)}},
            "validation_error",
            "metadata",
        ),
    ],
)
async def test_a_bad_request_is_a_4xx_naming_the_field(
    client: httpx.AsyncClient, assistant: str, body: dict[str, Any], code: str, param: str
) -> None:
    response = await client.post("/v1/responses", json=body)
    assert 400 <= response.status_code < 500, response.text
    openai_error(response, response.status_code, code, param)
    assert (await client.get("/v1/sessions")).json()["data"] == []


async def test_a_conversation_takes_at_most_20_items(
    client: httpx.AsyncClient, assistant: str
) -> None:
    many = [{"role": "user", "content": str(i)} for i in range(21)]
    refused = await client.post("/v1/conversations", json={"items": many})
    openai_error(refused, 400, "validation_error", "items")
    bad = await client.post("/v1/conversations", json={"items": [{"role": "user"}]})
    openai_error(bad, 400, "invalid_input", "items.0.content")


# -- auth and projects -----------------------------------------------------------------------


async def test_keys_and_projects_hold_for_responses_and_conversations(world: AuthWorld) -> None:
    client = world.client
    missing = await client.post("/v1/responses", json={"model": "assistant", "input": "hi"})
    assert missing.status_code == 401 and missing.json()["error"]["type"] == "authentication_error"
    answer = await client.post(
        "/v1/responses", json={"model": "assistant", "input": "hi"}, headers=keyed(world.client_a)
    )
    assert answer.status_code == 200, answer.text
    conv = await client.post(
        "/v1/conversations", json={"model": "assistant"}, headers=keyed(world.client_a)
    )
    assert conv.status_code == 200, conv.text
    conv_id = conv.json()["id"]
    other = keyed(world.client_b)
    for method, path in (
        ("GET", f"/v1/conversations/{conv_id}"),
        ("GET", f"/v1/conversations/{conv_id}/items"),
        ("GET", f"/v1/responses/{answer.json()['id']}"),
        ("DELETE", f"/v1/responses/{answer.json()['id']}"),
    ):
        hidden = await client.request(method, path, headers=other)
        assert hidden.status_code == 404, (method, path, hidden.text)
    continued = await client.post(
        "/v1/responses",
        json={"model": "assistant", "conversation": conv_id, "input": "x"},
        headers=other,
    )
    assert continued.status_code == 404
    runs = await client.get(
        f"/v1/sessions/{answer.json()['chatmodel']['session_uuid']}/runs",
        headers=keyed(world.admin_a),
    )
    assert runs.json()["data"][0]["key_name"] == "web"
