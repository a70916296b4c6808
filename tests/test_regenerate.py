"""Regenerate: the last reply is answered again; the old one stays, marked superseded."""

from __future__ import annotations

import httpx

from tests.factories import (
    add_messages,
    expect_error,
    make_chat_model,
    make_session,
    run,
    stored_messages,
)
from tests.support.llm_server import Reply, ScriptedLLMServer


async def test_regenerate_keeps_the_old_reply_and_never_sends_it_again(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    await make_chat_model(
        client, "remote", model="openai/scripted-model", api_base=llm_server.base_url
    )
    session = await make_session(client, "remote")
    await add_messages(client, session, {"role": "user", "content": "Name a colour."})
    llm_server.enqueue(Reply("Red."), Reply("Blue."), Reply("Green."))
    first = await run(client, session)
    second = await run(client, session, regenerate=True)
    assert (first["content"], second["content"]) == ("Red.", "Blue.")
    sent = [m["content"] for m in llm_server.requests[1]["messages"]]
    assert sent == ["You are a test assistant.", "Name a colour."]  # not "Red."

    stored = await stored_messages(client, session)
    assert [(m["seq"], m["content"], m["superseded"]) for m in stored] == [
        (1, "Name a colour.", False),
        (2, "Red.", True),
        (3, "Blue.", False),
    ]
    # The next run continues from the regenerated reply.
    await add_messages(client, session, {"role": "user", "content": "Another?"})
    await run(client, session)
    sent = [m["content"] for m in llm_server.requests[2]["messages"]]
    assert sent == ["You are a test assistant.", "Name a colour.", "Blue.", "Another?"]


async def test_regenerate_needs_a_reply_to_answer_again(client: httpx.AsyncClient) -> None:
    await make_chat_model(client)
    session = await make_session(client, "assistant")
    response = await client.post(f"/v1/sessions/{session}/run", json={"regenerate": True})
    expect_error(response, 409, "nothing_to_regenerate", "regenerate")
    await add_messages(client, session, {"role": "user", "content": "hi"})
    response = await client.post(f"/v1/sessions/{session}/run", json={"regenerate": True})
    expect_error(response, 409, "nothing_to_regenerate", "regenerate")
    both = {"regenerate": True, "messages": [{"role": "user", "content": "x"}]}
    response = await client.post(f"/v1/sessions/{session}/run", json=both)
    assert response.status_code == 422 and response.json()["field"] == "regenerate"
    # Nothing was stored by the refused requests, and no run was recorded.
    assert [m["content"] for m in await stored_messages(client, session)] == ["hi"]
    assert (await client.get(f"/v1/sessions/{session}/runs")).json()["data"] == []
