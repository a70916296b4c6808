"""Feedback: named scores of sessions and of their messages. Kept under an id the client
may choose (the same id again updates it, on the same target only), values that keep
their kind, listed with the session, deleted with it, and another project's as if it
did not exist."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from tests.factories import expect_error, make_chat_model, make_session, run
from tests.support.auth import BASE_URL, AuthWorld, keyed


async def a_reply(client: httpx.AsyncClient, session: str, question: str = "Hello?") -> str:
    """The uuid of the reply a run of ``session`` stores (the offline model echoes)."""
    ran = await run(client, session, messages=[{"role": "user", "content": question}])
    message_uuid: str = ran["detail"]["message_uuid"]
    return message_uuid


async def give(
    client: httpx.AsyncClient, session: str, message: str | None = None, **body: Any
) -> httpx.Response:
    path = f"/v1/sessions/{session}" + (f"/messages/{message}" if message else "") + "/feedback"
    return await client.post(path, json=body)


async def listed(client: httpx.AsyncClient, session: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/sessions/{session}/feedback")
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


@pytest.fixture
async def session(client: httpx.AsyncClient) -> str:
    await make_chat_model(client, "assistant")
    return await make_session(client, "assistant")


async def test_the_same_id_again_updates_the_feedback(
    client: httpx.AsyncClient, session: str
) -> None:
    reply = await a_reply(client, session)
    feedback_id = str(uuid.uuid4())

    first = await give(client, session, reply, id=feedback_id, name="thumbs", value=False)
    again = await give(
        client, session, reply, id=feedback_id, name="thumbs", value=True, comment="Better."
    )
    other = await give(client, session, reply, name="thumbs", value=True)  # no id: new

    assert first.status_code == 201, first.text
    assert again.status_code == 200, again.text
    assert other.status_code == 201, other.text
    updated = again.json()
    assert updated["id"] == feedback_id
    assert (updated["value"], updated["comment"]) == (True, "Better.")
    assert updated["created_at"] == first.json()["created_at"]
    assert updated["updated_at"] > first.json()["updated_at"]
    assert other.json()["id"] != feedback_id
    assert [(f["id"], f["value"]) for f in await listed(client, session)] == [
        (feedback_id, True),
        (other.json()["id"], True),
    ]


async def test_values_keep_their_kind(client: httpx.AsyncClient, session: str) -> None:
    values: list[tuple[Any, str]] = [
        (True, "boolean"),
        (False, "boolean"),
        (0, "number"),
        (1, "number"),
        (-3, "number"),
        (0.25, "number"),
        (1e300, "number"),
        ("1", "category"),
        ("true", "category"),
        ("needs work", "category"),
    ]
    for index, (value, _) in enumerate(values):
        given = await give(client, session, name=f"score-{index}", value=value)
        assert given.status_code == 201, given.text

    stored = await listed(client, session)

    assert [(f["value"], f["kind"]) for f in stored] == values
    # JSON tells true from 1 and 1 from "1"; Python's == does not, so check the types too.
    assert [type(f["value"]) for f in stored] == [type(value) for value, _ in values]


async def test_a_session_lists_its_own_and_its_messages_feedback_oldest_first(
    client: httpx.AsyncClient, session: str
) -> None:
    first = await a_reply(client, session, "One?")
    second = await a_reply(client, session, "Two?")
    await give(client, session, second, name="thumbs", value=True, by="user-7")
    await give(client, session, name="resolved", value="yes")
    await give(client, session, first, name="rating", value=2)
    elsewhere = await make_session(client, "assistant")
    await give(client, elsewhere, name="resolved", value="no")

    stored = await listed(client, session)

    assert [(f["message_uuid"], f["name"], f["value"]) for f in stored] == [
        (second, "thumbs", True),
        (None, "resolved", "yes"),
        (first, "rating", 2),
    ]
    assert {f["session_uuid"] for f in stored} == {session}
    assert stored[0]["by"] == "user-7" and stored[1]["by"] is None
    assert stored[0]["key_name"] is None  # keys not required: no key gave it
    assert await listed(client, elsewhere) != []


async def test_a_message_of_another_session_is_not_found(
    client: httpx.AsyncClient, session: str
) -> None:
    elsewhere = await make_session(client, "assistant")
    foreign = await a_reply(client, elsewhere)

    wrong_session = await give(client, session, foreign, name="thumbs", value=True)
    no_message = await give(client, session, str(uuid.uuid4()), name="thumbs", value=True)
    no_session = await give(client, str(uuid.uuid4()), foreign, name="thumbs", value=True)

    assert foreign in expect_error(wrong_session, 404, "message_not_found", "message_uuid")
    expect_error(no_message, 404, "message_not_found", "message_uuid")
    expect_error(no_session, 404, "session_not_found", "session_uuid")
    unknown = await client.get(f"/v1/sessions/{uuid.uuid4()}/feedback")
    expect_error(unknown, 404, "session_not_found", "session_uuid")
    assert await listed(client, session) == await listed(client, elsewhere) == []


async def test_an_id_given_to_one_target_is_not_moved_to_another(
    client: httpx.AsyncClient, session: str
) -> None:
    reply = await a_reply(client, session)
    elsewhere = await make_session(client, "assistant")
    feedback_id = str(uuid.uuid4())
    made = await give(client, session, reply, id=feedback_id, name="thumbs", value=True)
    assert made.status_code == 201, made.text

    for target_session, message in ((session, None), (elsewhere, None)):
        moved = await give(
            client, target_session, message, id=feedback_id, name="thumbs", value=False
        )
        expect_error(moved, 409, "conflict", "id")

    assert [(f["id"], f["value"]) for f in await listed(client, session)] == [(feedback_id, True)]
    assert await listed(client, elsewhere) == []


async def test_concurrent_gives_of_one_id_store_one_feedback(
    client: httpx.AsyncClient, session: str
) -> None:
    feedback_id = str(uuid.uuid4())
    answers = await asyncio.gather(
        *(give(client, session, id=feedback_id, name="rating", value=n) for n in range(5))
    )

    assert sorted(a.status_code for a in answers) == [200, 200, 200, 200, 201]
    (stored,) = await listed(client, session)
    assert stored["id"] == feedback_id and stored["value"] in range(5)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"value": True}, "name"),
        ({"name": "", "value": True}, "name"),
        ({"name": "thumbs up", "value": True}, "name"),
        ({"name": "-thumbs", "value": True}, "name"),
        ({"name": "x" * 101, "value": True}, "name"),
        ({"name": "thumbs"}, "value"),
        ({"name": "thumbs", "value": None}, "value"),
        ({"name": "thumbs", "value": [1]}, "value"),
        ({"name": "thumbs", "value": {"score": 1}}, "value"),
        ({"name": "thumbs", "value": ""}, "value"),
        ({"name": "thumbs", "value": "x" * 201}, "value"),
        ({"name": "thumbs", "value": True, "comment": "x" * 2001}, "comment"),
        ({"name": "thumbs", "value": True, "by": ""}, "by"),
        ({"name": "thumbs", "value": True, "by": "x" * 201}, "by"),
        ({"name": "thumbs", "value": True, "id": "not-a-uuid"}, "id"),
        ({"name": "thumbs", "value": True, "score": 1}, "score"),
    ],
)
async def test_bad_feedback_is_refused_naming_its_field(
    client: httpx.AsyncClient, session: str, body: dict[str, Any], field: str
) -> None:
    expect_error(await give(client, session, **body), 422, "validation_error", field)
    assert await listed(client, session) == []


async def test_numbers_that_are_not_json_numbers_are_refused(
    client: httpx.AsyncClient, session: str
) -> None:
    for number in ("NaN", "Infinity", "1e999"):
        refused = await client.post(
            f"/v1/sessions/{session}/feedback",
            content='{"name": "rating", "value": ' + number + "}",
            headers={"content-type": "application/json"},
        )
        expect_error(refused, 422, "validation_error", "value")
    assert await listed(client, session) == []


async def test_deleting_a_session_deletes_its_feedback(
    client: httpx.AsyncClient, session: str
) -> None:
    reply = await a_reply(client, session)
    ids = [str(uuid.uuid4()), str(uuid.uuid4())]
    await give(client, session, reply, id=ids[0], name="thumbs", value=True)
    await give(client, session, id=ids[1], name="resolved", value=True)

    deleted = await client.delete(f"/v1/sessions/{session}")
    assert deleted.status_code == 204, deleted.text
    gone = await client.get(f"/v1/sessions/{session}/feedback")
    expect_error(gone, 404, "session_not_found", "session_uuid")

    # The uuid is free again, and so are the ids: given again, they are new feedback.
    await make_session(client, "assistant", session_uuid=session)
    assert await listed(client, session) == []
    for feedback_id in ids:
        again = await give(client, session, id=feedback_id, name="resolved", value=False)
        assert again.status_code == 201, again.text


async def test_a_versions_figures_count_its_feedback_per_name(
    client: httpx.AsyncClient, session: str
) -> None:
    replies = [await a_reply(client, session, q) for q in ("One?", "Two?", "Three?")]
    for reply, thumbs in zip(replies, (True, True, False), strict=True):
        await give(client, session, reply, name="thumbs", value=thumbs)
    await give(client, session, replies[0], name="rating", value=4)
    await give(client, session, replies[1], name="rating", value=1.5)
    await give(client, session, name="resolved", value="yes")
    other = await make_session(client, "assistant")
    await give(client, other, name="resolved", value="yes")
    await give(client, other, name="resolved", value="no")

    stats = await client.get("/v1/chat-models/assistant/versions/1/stats")

    assert stats.status_code == 200, stats.text
    figures = stats.json()["feedback"]
    assert figures["thumbs"] == {"count": 3, "mean": pytest.approx(2 / 3), "categories": {}}
    assert figures["rating"] == {"count": 2, "mean": 2.75, "categories": {}}
    assert figures["resolved"] == {"count": 3, "mean": None, "categories": {"yes": 2, "no": 1}}


# -- projects ------------------------------------------------------------------------------


async def test_another_projects_feedback_is_as_if_it_did_not_exist(world: AuthWorld) -> None:
    """B cannot give or read feedback of A's session, and A's feedback ids are free in B:
    B giving one makes feedback of its own, A's unchanged."""
    a = keyed(world.client_a)
    session = world.session_a
    reply = (
        await world.client.post(
            f"/v1/sessions/{session}/run",
            json={"messages": [{"role": "user", "content": "A's question"}]},
            headers=a,
        )
    ).json()["detail"]["message_uuid"]
    feedback_id = str(uuid.uuid4())
    given = await world.client.post(
        f"/v1/sessions/{session}/messages/{reply}/feedback",
        json={"id": feedback_id, "name": "thumbs", "value": True},
        headers=a,
    )
    assert given.status_code == 201, given.text
    assert given.json()["key_name"] == "web"  # A's client key
    a_before = (await world.client.get(f"/v1/sessions/{session}/feedback", headers=a)).json()

    transport = httpx.ASGITransport(app=world.app)
    async with httpx.AsyncClient(
        transport=transport, base_url=BASE_URL, headers=keyed(world.client_b)
    ) as b:
        body = {"id": feedback_id, "name": "thumbs", "value": False}
        paths = (
            f"/v1/sessions/{session}/messages/{reply}/feedback",
            f"/v1/sessions/{session}/feedback",
        )
        for path in paths:
            expect_error(await b.post(path, json=body), 404, "session_not_found", "session_uuid")
        read = await b.get(f"/v1/sessions/{session}/feedback")
        expect_error(read, 404, "session_not_found", "session_uuid")

        admin_b = keyed(world.admin_b)
        await b.post("/v1/chat-models", json={"name": "assistant"}, headers=admin_b)
        version = {"system_prompt": "Be brief.", "model": "chatmodel-offline/echo"}
        await b.post(
            "/v1/chat-models/assistant/versions", json=version | {"publish": True}, headers=admin_b
        )
        b_session = await make_session(b, "assistant")
        # A's message in B's own session: no message of B's.
        on_a_message = await b.post(
            f"/v1/sessions/{b_session}/messages/{reply}/feedback", json=body
        )
        expect_error(on_a_message, 404, "message_not_found", "message_uuid")
        own = await b.post(f"/v1/sessions/{b_session}/feedback", json=body)
        assert own.status_code == 201, own.text  # created: A's feedback is not B's to update
        assert own.json()["key_name"] == "b-web"

    a_after = (await world.client.get(f"/v1/sessions/{session}/feedback", headers=a)).json()
    assert a_after == a_before
    assert [(f["id"], f["value"]) for f in a_after["data"]] == [(feedback_id, True)]
