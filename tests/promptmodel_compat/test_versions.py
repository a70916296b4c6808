"""How promptmodel's SDK sees our versions and releases: what it draws a new session's
version from, and the session's own version afterwards (in process, no SDK needed)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx

from tests.factories import add_messages, add_version, make_chat_model, make_session, publish

CLI = "/api/cli"


async def versions(
    client: httpx.AsyncClient, session: str = "", version: str = "deploy"
) -> dict[str, Any]:
    response = await client.get(
        f"{CLI}/chat_model_versions_with_logs",
        params={"chat_model_name": "assistant", "session_uuid": session, "version": version},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_split_is_drawn_by_its_shares(client: httpx.AsyncClient) -> None:
    await make_chat_model(client, system_prompt="One.")
    await add_version(client, "assistant", system_prompt="Two.")
    await add_version(client, "assistant", system_prompt="Three.")
    response = await client.post(
        "/v1/chat-models/assistant/publish", json={"weights": {"2": 30, "3": 70}}
    )
    assert response.status_code == 200, response.text

    drawn = (await versions(client))["chat_model_versions"]

    # Every side unpublished (the SDK would give a published one all of it), by share.
    assert [(v["version"], v["is_published"], v["ratio"]) for v in drawn] == [
        (2, False, 0.3),
        (3, False, 0.7),
    ]
    assert sum(v["ratio"] for v in drawn) == 1.0
    assert [v["system_prompt"] for v in drawn] == ["Two.", "Three."]


async def test_one_published_version_and_explicit_selectors(client: httpx.AsyncClient) -> None:
    await make_chat_model(client, system_prompt="One.")
    await add_version(client, "assistant", system_prompt="Two.")

    (deployed,) = (await versions(client))["chat_model_versions"]
    (latest,) = (await versions(client, version="latest"))["chat_model_versions"]
    (first,) = (await versions(client, version="1"))["chat_model_versions"]

    assert (deployed["version"], deployed["is_published"], deployed["ratio"]) == (1, True, 1.0)
    assert latest["version"] == 2 and latest["system_prompt"] == "Two."
    assert first["uuid"] == deployed["uuid"]
    bad = await client.get(
        f"{CLI}/chat_model_versions_with_logs",
        params={"chat_model_name": "assistant", "version": "newest"},
    )
    assert bad.status_code == 422 and bad.json()["field"] == "version"


async def test_a_session_reads_its_own_version_and_messages(client: httpx.AsyncClient) -> None:
    await make_chat_model(client, system_prompt="One.")
    session = await make_session(client, "assistant")
    await add_messages(client, session, {"role": "user", "content": "Hello."})
    await add_version(client, "assistant", system_prompt="Two.")
    await publish(client, "assistant", 2)

    read = await versions(client, session=session)

    (pinned,) = read["chat_model_versions"]
    assert (pinned["version"], pinned["system_prompt"]) == (1, "One.")
    assert read["chat_logs"] == [
        {
            "role": "user",
            "content": "Hello.",
            "name": None,
            "function_call": None,
            "tool_calls": None,
            "tool_call_id": None,
        }
    ]


async def test_make_session_pins_the_chosen_version(client: httpx.AsyncClient) -> None:
    await make_chat_model(client, system_prompt="One.")
    two = await add_version(client, "assistant", system_prompt="Two.")
    session = str(uuid.uuid4())

    made = await client.post(
        f"{CLI}/make_session", params={"session_uuid": session, "version_uuid": two["uuid"]}
    )
    again = await client.post(
        f"{CLI}/make_session", params={"session_uuid": session, "version_uuid": two["uuid"]}
    )

    assert made.status_code == again.status_code == 200
    assert (made.json()["created"], again.json()["created"]) == (True, False)
    stored = (await client.get(f"/v1/sessions/{session}")).json()
    assert stored["version"] == 2


async def _logged_session(client: httpx.AsyncClient) -> tuple[str, str]:
    await make_chat_model(client, system_prompt="One.")
    (version,) = (await versions(client))["chat_model_versions"]
    session = str(uuid.uuid4())
    made = await client.post(
        f"{CLI}/make_session", params={"session_uuid": session, "version_uuid": version["uuid"]}
    )
    assert made.status_code == 200, made.text
    return session, version["uuid"]


async def test_an_odd_logged_reply_is_a_4xx_or_stored_never_a_500(
    client: httpx.AsyncClient,
) -> None:
    """What another SDK logs is not ours to trust: an ``api_response`` of odd shape is read
    as far as it makes sense, one nested past the JSON limit or holding NaN is refused."""
    session, version_uuid = await _logged_session(client)
    url = f"{CLI}/chat_log"
    params = {"session_uuid": session, "version_uuid": version_uuid}

    def reply(api_response: object) -> list[dict[str, Any]]:
        message = {"role": "assistant", "content": "Hi."}
        return [{"uuid": str(uuid.uuid4()), "message": message, "api_response": api_response}]

    for odd in ({"choices": 5, "usage": "many"}, {"choices": ["x"], "model": 7}):
        stored = await client.post(url, params=params, json=reply(odd))
        assert stored.status_code == 200, (odd, stored.text)

    deep: dict[str, Any] = {}
    for _ in range(200):
        deep = {"d": deep}
    for refused in ({"choices": [], "deep": deep}, {"usage": {"prompt_tokens": float("nan")}}):
        body = json.dumps(reply(refused))  # NaN written as JSON parsers read it
        answer = await client.post(
            url, params=params, content=body, headers={"content-type": "application/json"}
        )
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"] == "validation_error"

    messages = (await client.get(f"/v1/sessions/{session}/messages")).json()["data"]
    assert [m["content"] for m in messages] == ["Hi.", "Hi."]


async def test_a_logged_reply_keeps_message_uuids_unique_in_the_project(
    client: httpx.AsyncClient,
) -> None:
    """A reply logged again into its own session is stored once; its uuid logged into another
    session is a 409, as for any message (not silently dropped)."""
    first, version_uuid = await _logged_session(client)
    second = str(uuid.uuid4())
    made = await client.post(
        f"{CLI}/make_session", params={"session_uuid": second, "version_uuid": version_uuid}
    )
    assert made.status_code == 200, made.text
    reply = [
        {
            "uuid": str(uuid.uuid4()),
            "message": {"role": "assistant", "content": "Hi."},
            "api_response": {"model": "gpt-4o", "usage": {"prompt_tokens": 3}},
        }
    ]
    for _ in range(2):
        logged = await client.post(f"{CLI}/chat_log", params={"session_uuid": first}, json=reply)
        assert logged.status_code == 200, logged.text
    elsewhere = await client.post(f"{CLI}/chat_log", params={"session_uuid": second}, json=reply)
    assert elsewhere.status_code == 409, elsewhere.text
    assert (elsewhere.json()["error"], elsewhere.json()["field"]) == ("conflict", "body.0.uuid")

    stored = (await client.get(f"/v1/sessions/{first}/messages")).json()["data"]
    assert [m["content"] for m in stored] == ["Hi."]
    assert (await client.get(f"/v1/sessions/{second}/messages")).json()["data"] == []
