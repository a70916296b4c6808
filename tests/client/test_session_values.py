"""``ChatModel(name, variables=..., metadata=...)``: the values a session is made with,
over a real socket (``live_app``): a version that declares template variables can be
talked to from Python, and ``metadata["user_id"]`` keeps a user on one side of a split."""

from __future__ import annotations

import httpx
import pytest

from chatmodel import ChatModel, ChatModelError
from tests.factories import add_version, make_chat_model
from tests.support.servers import LiveApp

HELLO = [{"role": "user", "content": "Hello"}]


async def stored_session(admin: httpx.AsyncClient, session_uuid: str) -> dict[str, object]:
    response = await admin.get(f"/v1/sessions/{session_uuid}")
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


async def test_a_session_is_made_with_its_variables_and_metadata(
    live_app: LiveApp, live_admin: httpx.AsyncClient
) -> None:
    await make_chat_model(live_admin, "bot", system_prompt="You help {{user}}.", variables=["user"])
    chat = ChatModel(
        "bot",
        base_url=live_app.base_url,
        variables={"user": "Bo"},
        metadata={"user_id": "u-7", "plan": "pro"},
    )
    chat.add_messages(HELLO)
    reply = chat.run()
    assert reply.error is False, reply.error_log
    session = await stored_session(live_admin, chat.session_uuid)
    assert session["variables"] == {"user": "Bo"}
    assert session["metadata"] == {"user_id": "u-7", "plan": "pro"}
    assert chat.get_config().system_prompt == "You help Bo."

    # Without the values the version declares, the session cannot be made: the error
    # names the variable, and nothing is stored.
    bare = ChatModel("bot", base_url=live_app.base_url)
    failed = bare.run()
    assert failed.error is True and "user" in (failed.error_log or "")
    with pytest.raises(ChatModelError, match="user"):
        bare.add_messages(HELLO)
    missing = await live_admin.get(f"/v1/sessions/{bare.session_uuid}")
    assert missing.status_code == 404


async def test_metadata_user_id_keeps_a_user_on_one_side_of_a_split(
    live_app: LiveApp, live_admin: httpx.AsyncClient
) -> None:
    await make_chat_model(live_admin, "bot", system_prompt="first", publish=False)
    await add_version(live_admin, "bot", system_prompt="second")
    published = await live_admin.post(
        "/v1/chat-models/bot/publish", json={"weights": {"1": 50, "2": 50}}
    )
    assert published.status_code == 200, published.text
    users = {"alice": 1, "bob": 2}  # their buckets under a 50/50 split
    landed: dict[str, set[int]] = {user: set() for user in users}
    for user in users:
        for _ in range(4):
            chat = ChatModel("bot", base_url=live_app.base_url, metadata={"user_id": user})
            chat.add_messages(HELLO)
            session = await stored_session(live_admin, chat.session_uuid)
            assert isinstance(session["version"], int)
            landed[user].add(session["version"])
    assert landed == {user: {version} for user, version in users.items()}
