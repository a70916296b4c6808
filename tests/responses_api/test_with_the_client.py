"""One conversation through the ``openai`` SDK's Responses API and the ``chatmodel``
client in turn, against a real server: each sees what the other stored."""

from __future__ import annotations

import uuid

import httpx
import openai

from chatmodel import ChatModel
from tests.support.servers import LiveApp


def test_a_conversation_moves_between_the_responses_api_and_the_client(
    live_app: LiveApp, sdk: openai.OpenAI
) -> None:
    first = sdk.responses.create(model="simple_assistant", input="From the SDK")
    session_uuid = (first.model_extra or {})["chatmodel"]["session_uuid"]

    session = ChatModel("simple_assistant", session_uuid, base_url=live_app.base_url)
    session.add_messages([{"role": "user", "content": "From the client"}])
    assert session.run().content == "From the client"
    assert [m["content"] for m in session.get_config().message_logs] == [
        "From the SDK",
        "From the SDK",
        "From the client",
        "From the client",
    ]

    third = sdk.responses.create(
        model="simple_assistant",
        conversation=f"conv_{uuid.UUID(session_uuid).hex}",
        input="From the SDK again",
    )
    assert third.output_text == "From the SDK again"
    items = list(sdk.conversations.items.list(f"conv_{uuid.UUID(session_uuid).hex}", order="asc"))
    texts = [getattr(item.content[0], "text", None) for item in items if item.type == "message"]
    assert texts == [
        "From the SDK",
        "From the SDK",
        "From the client",
        "From the client",
        "From the SDK again",
        "From the SDK again",
    ]
    # the client's run is a response too
    runs = httpx.get(f"{live_app.base_url}/v1/sessions/{session_uuid}/runs").json()["data"]
    assert len(runs) == 3
    native = sdk.responses.retrieve(f"resp_{uuid.UUID(runs[1]['uuid']).hex}")
    assert native.output_text == "From the client"
    listed = httpx.get(
        f"{live_app.base_url}/v1/sessions", params={"chat_model": "simple_assistant"}
    ).json()["data"]
    assert session_uuid in [s["uuid"] for s in listed]
