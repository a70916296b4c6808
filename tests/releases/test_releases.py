"""Publishing one version, weighted splits, rollbacks, the release history, and which
version of a split a new session gets."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest

from chatmodel_service.releases.assignment import bucket, pick_version
from tests.factories import add_version, expect_error, make_chat_model


async def post_publish(client: httpx.AsyncClient, name: str, **body: Any) -> dict[str, Any]:
    response = await client.post(f"/v1/chat-models/{name}/publish", json=body)
    assert response.status_code == 200, response.text
    release: dict[str, Any] = response.json()
    return release


async def post_rollback(client: httpx.AsyncClient, name: str, **body: Any) -> dict[str, Any]:
    response = await client.post(f"/v1/chat-models/{name}/rollback", json=body)
    assert response.status_code == 200, response.text
    release: dict[str, Any] = response.json()
    return release


async def releases_of(client: httpx.AsyncClient, name: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/chat-models/{name}/releases")
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def deployed(client: httpx.AsyncClient, name: str) -> dict[str, int]:
    response = await client.get(f"/v1/chat-models/{name}")
    assert response.status_code == 200, response.text
    published: dict[str, int] = response.json()["published_versions"]
    return published


async def two_versions(client: httpx.AsyncClient, name: str = "bot") -> None:
    """A chat model with versions 1 and 2 and nothing published."""
    await make_chat_model(client, name, system_prompt="first", publish=False)
    await add_version(client, name, system_prompt="second")


async def session_version(client: httpx.AsyncClient, name: str, **fields: Any) -> int:
    response = await client.post("/v1/sessions", json={"chat_model": name, **fields})
    assert response.status_code in (200, 201), response.text
    version: int = response.json()["version"]
    return version


def seeded_uuids(count: int, seed: int) -> list[uuid.UUID]:
    """Random version-4 uuids, the same ones on every run (so no test is flaky)."""
    rng = random.Random(seed)
    return [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(count)]


# --- the release cycle ---------------------------------------------------------------------


async def test_publish_then_split_then_rollback(client: httpx.AsyncClient) -> None:
    await two_versions(client)

    first = await post_publish(client, "bot", version=1, by="alice", note="go live")
    split = await post_publish(
        client,
        "bot",
        weights={"1": 50, "2": 50},
        expected_release=first["id"],
        by="bob",
        note="A/B the new prompt",
    )
    assert await deployed(client, "bot") == {"1": 50, "2": 50}
    back = await post_rollback(
        client, "bot", expected_release=split["id"], by="carol", note="v2 confuses users"
    )

    summary = [
        (r["release"], r["kind"], r["versions"], r["previous_versions"], r["published_by"])
        for r in (first, split, back)
    ]
    assert summary == [
        (1, "publish", {"1": 100}, {}, "alice"),
        (2, "split", {"1": 50, "2": 50}, {"1": 100}, "bob"),
        (3, "rollback", {"1": 100}, {"1": 50, "2": 50}, "carol"),
    ]
    assert [r["note"] for r in (first, split, back)] == [
        "go live",
        "A/B the new prompt",
        "v2 confuses users",
    ]
    assert {r["chat_model"] for r in (first, split, back)} == {"bot"}
    assert len({r["id"] for r in (first, split, back)}) == 3
    assert await releases_of(client, "bot") == [back, split, first]
    assert await deployed(client, "bot") == {"1": 100}
    assert await session_version(client, "bot") == 1


async def test_rollback_without_a_note_says_where_it_went(client: httpx.AsyncClient) -> None:
    await two_versions(client)
    await post_publish(client, "bot", version=1)
    await post_publish(client, "bot", version=2)

    back = await client.post("/v1/chat-models/bot/rollback")  # no body at all

    assert back.status_code == 200, back.text
    assert (back.json()["versions"], back.json()["note"]) == (
        {"1": 100},
        "Rolled back to release 1.",
    )
    assert back.json()["published_by"] is None


async def test_rolling_back_twice_undoes_the_rollback(client: httpx.AsyncClient) -> None:
    await two_versions(client)
    await post_publish(client, "bot", version=1)
    await post_publish(client, "bot", weights={"1": 20, "2": 80})

    once = await post_rollback(client, "bot")
    twice = await post_rollback(client, "bot")

    assert once["versions"] == {"1": 100}
    assert (twice["kind"], twice["versions"]) == ("rollback", {"1": 20, "2": 80})
    assert twice["previous_versions"] == {"1": 100}
    assert [r["release"] for r in await releases_of(client, "bot")] == [4, 3, 2, 1]


async def test_version_created_with_publish_is_a_publish_release(client: httpx.AsyncClient) -> None:
    await make_chat_model(client, "bot")  # version 1 with publish: true

    (release,) = await releases_of(client, "bot")

    assert (release["release"], release["kind"], release["versions"]) == (1, "publish", {"1": 100})
    assert release["previous_versions"] == {}


# --- optimistic concurrency ----------------------------------------------------------------


async def test_stale_expected_release_is_refused_and_nothing_changes(
    client: httpx.AsyncClient,
) -> None:
    await two_versions(client)
    seen = await post_publish(client, "bot", version=1)
    current = await post_publish(client, "bot", version=2)  # someone else published meanwhile
    before = await releases_of(client, "bot")

    publish = await client.post(
        "/v1/chat-models/bot/publish", json={"version": 1, "expected_release": seen["id"]}
    )
    rollback = await client.post(
        "/v1/chat-models/bot/rollback", json={"expected_release": seen["id"]}
    )

    for response in (publish, rollback):
        detail = expect_error(response, 409, "stale_release", "expected_release")
        assert "release 2" in detail and current["id"] in detail
    assert await releases_of(client, "bot") == before
    assert await deployed(client, "bot") == {"2": 100}


async def test_expected_release_when_nothing_is_published(client: httpx.AsyncClient) -> None:
    await two_versions(client)

    response = await client.post(
        "/v1/chat-models/bot/publish", json={"version": 1, "expected_release": str(uuid.uuid4())}
    )

    assert "nothing is published" in expect_error(
        response, 409, "stale_release", "expected_release"
    )
    assert await releases_of(client, "bot") == []


# --- invalid requests ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "error", "field", "named"),
    [
        ({"weights": {"1": 60, "2": 30}}, 422, "validation_error", "weights", "100"),
        ({"weights": {"1": 60, "2": 60}}, 422, "validation_error", "weights", "120"),
        ({"weights": {"1": 100}}, 422, "validation_error", "weights", "two versions"),
        (
            {"version": 1, "weights": {"1": 50, "2": 50}},
            422,
            "validation_error",
            "weights",
            "not both",
        ),
        ({}, 422, "validation_error", "weights", "'version'"),
        ({"note": "forgot the version"}, 422, "validation_error", "weights", "'weights'"),
        ({"weights": {"1": 0, "2": 100}}, 422, "validation_error", "weights.1", "1"),
        ({"weights": {"1": 101, "2": -1}}, 422, "validation_error", "weights.1", "100"),
        ({"weights": {"one": 50, "2": 50}}, 422, "validation_error", "weights.one", "integer"),
        ({"weights": [1, 2]}, 422, "validation_error", "weights", "dictionary"),
        ({"weights": {"1": 50, "3": 50}}, 404, "version_not_found", "weights.3", "version 3"),
        ({"version": 3}, 404, "version_not_found", "version", "version 3"),
        ({"version": 0}, 422, "validation_error", "version", "1"),
        (
            {"version": 1, "expected_release": "nope"},
            422,
            "validation_error",
            "expected_release",
            "UUID",
        ),
        ({"version": 1, "by": "x" * 201}, 422, "validation_error", "by", "200"),
    ],
)
async def test_bad_publish_changes_nothing(
    client: httpx.AsyncClient,
    body: dict[str, Any],
    status: int,
    error: str,
    field: str,
    named: str,
) -> None:
    await two_versions(client)
    await post_publish(client, "bot", version=2)
    before = await releases_of(client, "bot")

    response = await client.post("/v1/chat-models/bot/publish", json=body)

    assert named in expect_error(response, status, error, field)
    assert await releases_of(client, "bot") == before


async def test_a_bad_version_is_reported_once(client: httpx.AsyncClient) -> None:
    await two_versions(client)

    response = await client.post("/v1/chat-models/bot/publish", json={"version": -1})

    expect_error(response, 422, "validation_error", "version")
    assert [e["field"] for e in response.json()["errors"]] == ["version"]


@pytest.mark.parametrize("published", [0, 1])
async def test_nothing_to_roll_back(client: httpx.AsyncClient, published: int) -> None:
    await two_versions(client)
    for number in range(1, published + 1):
        await post_publish(client, "bot", version=number)
    before = await releases_of(client, "bot")

    response = await client.post("/v1/chat-models/bot/rollback", json={})

    assert "nothing to roll back" in expect_error(response, 409, "nothing_to_roll_back", None)
    assert await releases_of(client, "bot") == before


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/chat-models/ghost/publish", {"version": 1}),
        ("POST", "/v1/chat-models/ghost/rollback", {}),
        ("GET", "/v1/chat-models/ghost/releases", None),
    ],
)
async def test_release_routes_of_an_unknown_chat_model(
    client: httpx.AsyncClient, method: str, path: str, body: dict[str, Any] | None
) -> None:
    response = await client.request(method, path, json=body)

    assert "ghost" in expect_error(response, 404, "chat_model_not_found", "chat_model")


# --- sticky assignment: the pure function --------------------------------------------------


def test_buckets_come_from_sha256_not_pythons_hash() -> None:
    # First 8 bytes of sha256(key), big-endian, modulo 100: the same in every process.
    assert [bucket(key) for key in ("alice", "bob", "dave", "user-42")] == [7, 50, 51, 29]


def test_buckets_are_walked_in_version_order() -> None:
    # "bob" is bucket 50: the first bucket after a 50 share, the last one inside a 51 share.
    assert pick_version({1: 50, 2: 50}, "bob") == 2
    assert pick_version({2: 50, 1: 50}, "bob") == 2  # insertion order does not matter
    assert pick_version({1: 51, 2: 49}, "bob") == 1
    assert pick_version({3: 7, 9: 93}, "alice") == 9  # bucket 7 is the first of v9's
    assert pick_version({3: 8, 9: 92}, "alice") == 3
    assert pick_version({5: 100}, "anyone") == 5


def test_the_same_key_always_gets_the_same_version() -> None:
    weights = {1: 50, 2: 50}
    for key in map(str, seeded_uuids(200, seed=1)):
        first = pick_version(weights, key)
        assert all(pick_version(weights, key) == first for _ in range(3))
        assert pick_version({3: 50, 4: 50}, key) == first + 2  # same bucket, other numbers


@pytest.mark.parametrize(
    "weights",
    [{1: 50, 2: 50}, {1: 70, 2: 30}, {1: 10, 2: 20, 3: 70}, {4: 1, 7: 99}],
)
def test_random_keys_follow_the_weights(weights: dict[int, int]) -> None:
    keys = [str(u) for u in seeded_uuids(1000, seed=20261122)]

    counts = Counter(pick_version(weights, key) for key in keys)

    for number, weight in weights.items():
        share = 100 * counts[number] / len(keys)
        assert weight - 5 <= share <= weight + 5, (number, share)


# --- sticky assignment through the API -----------------------------------------------------


async def test_a_session_gets_the_version_its_uuid_picks(client: httpx.AsyncClient) -> None:
    await two_versions(client)
    await post_publish(client, "bot", weights={"1": 50, "2": 50})
    weights = {1: 50, 2: 50}

    chosen = {
        u: await session_version(client, "bot", session_uuid=str(u)) for u in seeded_uuids(20, 7)
    }
    generated = []
    for _ in range(20):  # the server picks the uuid: it must still be the key
        response = await client.post("/v1/sessions", json={"chat_model": "bot"})
        generated.append((response.json()["uuid"], response.json()["version"]))

    assert chosen == {u: pick_version(weights, str(u)) for u in chosen}
    assert set(chosen.values()) == {1, 2}
    assert all(version == pick_version(weights, key) for key, version in generated)
    # Asking again for the same session returns it, on its version, even after a new publish.
    await post_publish(client, "bot", version=2)
    assert {u: await session_version(client, "bot", session_uuid=str(u)) for u in chosen} == chosen


async def test_all_sessions_of_a_user_land_together(client: httpx.AsyncClient) -> None:
    await two_versions(client)
    await post_publish(client, "bot", weights={"1": 50, "2": 50})
    users = {"alice": 1, "bob": 2}  # buckets 7 and 50
    assert {user: pick_version({1: 50, 2: 50}, user) for user in users} == users

    landed = {
        user: {await session_version(client, "bot", metadata={"user_id": user}) for _ in range(8)}
        for user in users
    }

    assert landed == {"alice": {1}, "bob": {2}}


async def test_identical_splits_of_two_chat_models_agree(client: httpx.AsyncClient) -> None:
    for name in ("support", "sales"):
        await two_versions(client, name)
        await post_publish(client, name, weights={"1": 50, "2": 50})
    users = [f"user-{i}" for i in range(12)]

    support = [await session_version(client, "support", metadata={"user_id": u}) for u in users]
    sales = [await session_version(client, "sales", metadata={"user_id": u}) for u in users]

    assert support == sales == [pick_version({1: 50, 2: 50}, u) for u in users]
    assert set(support) == {1, 2}


async def test_a_hundred_sessions_split_about_evenly(client: httpx.AsyncClient) -> None:
    await two_versions(client)
    await post_publish(client, "bot", weights={"1": 50, "2": 50})

    versions = Counter(
        [await session_version(client, "bot", session_uuid=str(u)) for u in seeded_uuids(100, 99)]
    )

    assert sum(versions.values()) == 100
    assert 40 <= versions[1] <= 60 and 40 <= versions[2] <= 60, versions


async def test_config_without_a_session_reports_the_largest_share(
    client: httpx.AsyncClient,
) -> None:
    await two_versions(client)
    await post_publish(client, "bot", weights={"1": 30, "2": 70})

    config = await client.get("/v1/chat-models/bot/config")

    assert config.status_code == 200, config.text
    assert config.json()["version"] == 2
