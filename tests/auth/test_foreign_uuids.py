"""Another project's uuids are as if they did not exist: session and message uuids are
unique per project, so one that another project holds is free in yours. Taking it makes a
session (or message) of your own, and neither project sees or changes the other's.

Project B (its admin key) takes uuids of project A's; A's session (the world's
``session_a``, with a message of A's) must come out of it unchanged."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.factories import add_messages, make_chat_model, make_session
from tests.support.auth import BASE_URL, AuthWorld, keyed


@pytest.fixture
async def project_b(world: AuthWorld) -> AsyncIterator[httpx.AsyncClient]:
    """A client acting as project B's admin, with B's chat model "assistant"."""
    transport = httpx.ASGITransport(app=world.app)
    async with httpx.AsyncClient(
        transport=transport, base_url=BASE_URL, headers=keyed(world.admin_b)
    ) as client:
        await make_chat_model(client, "assistant")
        yield client


@pytest.fixture
async def a_message(world: AuthWorld) -> dict[str, Any]:
    """A message of project A's, stored in A's session."""
    posted = await world.client.post(
        f"/v1/sessions/{world.session_a}/messages",
        json={"messages": [{"role": "user", "content": "A's secret question"}]},
        headers=keyed(world.client_a),
    )
    assert posted.status_code == 201, posted.text
    message: dict[str, Any] = posted.json()["data"][0]
    return message


async def a_view(world: AuthWorld) -> tuple[Any, Any]:
    """Project A's session and its messages, as A reads them."""
    headers = keyed(world.client_a)
    session = await world.client.get(f"/v1/sessions/{world.session_a}", headers=headers)
    messages = await world.client.get(f"/v1/sessions/{world.session_a}/messages", headers=headers)
    assert session.status_code == messages.status_code == 200
    return session.json(), messages.json()


async def test_a_session_create_with_another_projects_uuid_makes_your_own(
    world: AuthWorld, project_b: httpx.AsyncClient, a_message: dict[str, Any]
) -> None:
    before = await a_view(world)

    created = await project_b.post(
        "/v1/sessions", json={"chat_model": "assistant", "session_uuid": world.session_a}
    )
    again = await project_b.post(
        "/v1/sessions", json={"chat_model": "assistant", "session_uuid": world.session_a}
    )

    assert created.status_code == 201, created.text
    assert again.status_code == 200, again.text
    assert created.json()["uuid"] == again.json()["uuid"] == world.session_a
    assert created.json()["chat_model"] == "assistant"
    mine = await project_b.get(f"/v1/sessions/{world.session_a}/messages")
    assert mine.json()["data"] == []  # none of A's messages
    await add_messages(project_b, world.session_a, {"role": "user", "content": "B's question"})
    assert await a_view(world) == before


async def test_an_x_session_id_of_another_project_runs_a_session_of_your_own(
    world: AuthWorld, project_b: httpx.AsyncClient, a_message: dict[str, Any]
) -> None:
    before = await a_view(world)

    completed = await project_b.post(
        "/v1/chat/completions",
        json={"model": "assistant", "messages": [{"role": "user", "content": "Hi"}]},
        headers={"X-Session-Id": world.session_a},
    )

    assert completed.status_code == 200, completed.text
    assert completed.json()["chatmodel"]["session_uuid"] == world.session_a
    mine = (await project_b.get(f"/v1/sessions/{world.session_a}/messages")).json()["data"]
    assert [m["role"] for m in mine] == ["user", "assistant"]
    assert mine[0]["content"] == "Hi"
    runs = (await project_b.get(f"/v1/sessions/{world.session_a}/runs")).json()["data"]
    assert len(runs) == 1 and runs[0]["session_uuid"] == world.session_a
    assert await a_view(world) == before


async def test_a_fork_onto_another_projects_uuid_makes_your_own(
    world: AuthWorld, project_b: httpx.AsyncClient, a_message: dict[str, Any]
) -> None:
    before = await a_view(world)
    original = await make_session(project_b, "assistant")
    await add_messages(project_b, original, {"role": "user", "content": "B's question"})

    fork = await project_b.post(
        f"/v1/sessions/{original}/fork", json={"session_uuid": world.session_a}
    )

    assert fork.status_code == 201, fork.text
    assert fork.json()["uuid"] == world.session_a
    assert fork.json()["parent_session_uuid"] == original
    copied = (await project_b.get(f"/v1/sessions/{world.session_a}/messages")).json()["data"]
    assert [m["content"] for m in copied] == ["B's question"]
    deleted = await project_b.delete(f"/v1/sessions/{world.session_a}")
    assert deleted.status_code == 204, deleted.text
    assert await a_view(world) == before  # deleting B's session left A's alone


async def test_another_projects_message_uuid_is_free_in_yours(
    world: AuthWorld, project_b: httpx.AsyncClient, a_message: dict[str, Any]
) -> None:
    before = await a_view(world)
    target = await make_session(project_b, "assistant")
    message = {"role": "user", "content": "B's question", "uuid": a_message["uuid"]}

    posted = await project_b.post(f"/v1/sessions/{target}/messages", json={"messages": [message]})
    reposted = await project_b.post(f"/v1/sessions/{target}/messages", json={"messages": [message]})

    assert posted.status_code == reposted.status_code == 201, posted.text
    assert posted.json()["data"] == reposted.json()["data"]  # stored once, returned again
    [stored] = posted.json()["data"]
    assert (stored["uuid"], stored["content"]) == (a_message["uuid"], "B's question")
    forked = await project_b.post(
        f"/v1/sessions/{target}/fork", json={"at_message_uuid": a_message["uuid"]}
    )
    assert forked.status_code == 201, forked.text
    assert await a_view(world) == before


async def test_your_own_uuids_still_conflict(project_b: httpx.AsyncClient) -> None:
    """Within a project the rules stand: another chat model's session uuid, and a
    message uuid of another of your sessions, are 409s."""
    await make_chat_model(project_b, "other")
    own = await make_session(project_b, "other")
    taken = await project_b.post(
        "/v1/sessions", json={"chat_model": "assistant", "session_uuid": own}
    )
    assert taken.status_code == 409, taken.text
    assert taken.json()["field"] == "session_uuid"

    [stored] = await add_messages(project_b, own, {"role": "user", "content": "Hello?"})
    target = await make_session(project_b, "assistant")
    elsewhere = await project_b.post(
        f"/v1/sessions/{target}/messages",
        json={"messages": [{"role": "user", "content": "Hello?", "uuid": stored["uuid"]}]},
    )
    assert elsewhere.status_code == 409, elsewhere.text
    assert elsewhere.json()["field"] == "messages.0.uuid"


async def test_a_fresh_uuid_is_still_yours_to_take(project_b: httpx.AsyncClient) -> None:
    chosen = str(uuid.uuid4())
    created = await project_b.post(
        "/v1/sessions", json={"chat_model": "assistant", "session_uuid": chosen}
    )
    assert created.status_code == 201, created.text
    assert created.json()["uuid"] == chosen
