"""Another project's uuids answer like the caller's own: session and message uuids are
unique across the server, so one another project holds cannot be used, but the refusal is
the very answer a conflicting session or message of the caller's own project gets (same
status, error, detail, field and headers), so it does not tell whose the uuid is.

Project B (its admin key) meets a uuid of project A's and, for comparison, the same kind of
conflict of its own making; the two answers must be the same, but for the uuid itself."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.factories import add_messages, make_chat_model, make_session
from tests.support.auth import BASE_URL, AuthWorld, keyed

# Differ per response whatever the answer: the request's id and the time.
_PER_RESPONSE_HEADERS = {"x-request-id", "date"}


@pytest.fixture
async def project_b(world: AuthWorld) -> AsyncIterator[httpx.AsyncClient]:
    """A client acting as project B's admin, with B's chat models "assistant" and "other"."""
    transport = httpx.ASGITransport(app=world.app)
    async with httpx.AsyncClient(
        transport=transport, base_url=BASE_URL, headers=keyed(world.admin_b)
    ) as client:
        await make_chat_model(client, "assistant")
        await make_chat_model(client, "other")
        yield client


def answer(response: httpx.Response, used_uuid: str) -> dict[str, Any]:
    """What a caller sees, with the uuid it sent written as a placeholder."""
    headers = {
        name: value for name, value in response.headers.items() if name not in _PER_RESPONSE_HEADERS
    }
    return {
        "status": response.status_code,
        "headers": headers,
        "body": response.text.replace(used_uuid, "<uuid>"),
    }


async def test_a_session_create_with_another_projects_uuid_answers_as_for_your_own(
    world: AuthWorld, project_b: httpx.AsyncClient
) -> None:
    own = await make_session(project_b, "other")

    def create(session_uuid: str) -> Any:
        return project_b.post(
            "/v1/sessions", json={"chat_model": "assistant", "session_uuid": session_uuid}
        )

    on_own = await create(own)
    on_foreign = await create(world.session_a)

    assert on_own.status_code == 409, on_own.text
    assert answer(on_foreign, world.session_a) == answer(on_own, own)


async def test_an_x_session_id_of_another_project_answers_as_for_your_own(
    world: AuthWorld, project_b: httpx.AsyncClient
) -> None:
    own = await make_session(project_b, "other")

    def complete(session_uuid: str) -> Any:
        return project_b.post(
            "/v1/chat/completions",
            json={"model": "assistant", "messages": [{"role": "user", "content": "Hi"}]},
            headers={"X-Session-Id": session_uuid},
        )

    on_own = await complete(own)
    on_foreign = await complete(world.session_a)

    assert on_own.status_code == 409, on_own.text
    assert answer(on_foreign, world.session_a) == answer(on_own, own)


async def test_a_fork_onto_another_projects_uuid_answers_as_for_your_own(
    world: AuthWorld, project_b: httpx.AsyncClient
) -> None:
    original = await make_session(project_b, "assistant")
    own = await make_session(project_b, "assistant")

    def fork(session_uuid: str) -> Any:
        return project_b.post(f"/v1/sessions/{original}/fork", json={"session_uuid": session_uuid})

    on_own = await fork(own)
    on_foreign = await fork(world.session_a)

    assert on_own.status_code == 409, on_own.text
    assert answer(on_foreign, world.session_a) == answer(on_own, own)


async def test_another_projects_message_uuid_answers_as_one_of_your_other_sessions(
    world: AuthWorld, project_b: httpx.AsyncClient
) -> None:
    message = {"role": "user", "content": "Hello?"}
    a_messages = await world.client.post(
        f"/v1/sessions/{world.session_a}/messages",
        json={"messages": [message]},
        headers=keyed(world.client_a),
    )
    assert a_messages.status_code == 201, a_messages.text
    foreign = a_messages.json()["data"][0]["uuid"]
    [stored] = await add_messages(project_b, await make_session(project_b, "assistant"), message)
    target = await make_session(project_b, "assistant")

    def post(message_uuid: str) -> Any:
        return project_b.post(
            f"/v1/sessions/{target}/messages", json={"messages": [message | {"uuid": message_uuid}]}
        )

    on_own = await post(stored["uuid"])
    on_foreign = await post(foreign)

    assert on_own.status_code == 409, on_own.text
    assert answer(on_foreign, foreign) == answer(on_own, stored["uuid"])
    assert (await project_b.get(f"/v1/sessions/{target}/messages")).json()["data"] == []


async def test_a_fresh_uuid_is_still_yours_to_take(project_b: httpx.AsyncClient) -> None:
    chosen = str(uuid.uuid4())
    created = await project_b.post(
        "/v1/sessions", json={"chat_model": "assistant", "session_uuid": chosen}
    )
    assert created.status_code == 201, created.text
