"""Publishing and template variables: a split whose versions declare different variables
is refused (a new session could only match one side), and a release that changes the
variables new sessions need says so in its ``warnings``. On SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx

from tests.factories import add_version, expect_error, make_chat_model
from tests.releases.test_releases import deployed, post_publish, post_rollback, releases_of

PLAN_PROMPT = "You help customers on the {{plan}} plan."


async def plain_then_plan(client: httpx.AsyncClient, name: str = "bot") -> None:
    """v1 declares no variables and is live; v2 declares {plan} and is not published."""
    await make_chat_model(client, name, system_prompt="You help customers.")
    await add_version(client, name, system_prompt=PLAN_PROMPT, variables=["plan"])


async def create_session(client: httpx.AsyncClient, name: str, **fields: Any) -> httpx.Response:
    return await client.post("/v1/sessions", json={"chat_model": name, **fields})


async def test_a_split_of_different_variables_is_refused_and_nothing_changes(
    client: httpx.AsyncClient,
) -> None:
    await plain_then_plan(client)
    history = await releases_of(client, "bot")

    response = await client.post(
        "/v1/chat-models/bot/publish", json={"weights": {"1": 50, "2": 50}, "note": "A/B"}
    )

    detail = expect_error(response, 422, "variables_mismatch", "weights")
    assert detail == (
        "The versions of this split declare different template variables (version 1 "
        "declares none, version 2 declares {plan}), and a new session must send exactly "
        "the variables of the version it is given: sessions created without variables "
        "would fail on version 2, which declares {plan}; sessions created with variables "
        "{plan} would fail on version 1, which declares none. Nothing was published: split "
        "versions that declare the same variables, or send allow_variable_mismatch: true "
        "if every client copes."
    )
    assert "\n" not in detail  # the command line prints it as one error line
    assert await releases_of(client, "bot") == history
    assert await deployed(client, "bot") == {"1": 100}
    created = await create_session(client, "bot")
    assert (created.status_code, created.json()["version"]) == (201, 1)


async def test_the_refusal_groups_versions_that_declare_the_same_variables(
    client: httpx.AsyncClient,
) -> None:
    await plain_then_plan(client)
    await add_version(client, "bot", system_prompt="Shorter answers.")  # v3, none
    await add_version(
        client,
        "bot",
        system_prompt="{{customer}} is on the {{plan}} plan.",
        variables=["plan", "customer"],
    )  # v4

    response = await client.post(
        "/v1/chat-models/bot/publish",
        json={"weights": {"1": 25, "2": 25, "3": 25, "4": 25}},
    )

    detail = expect_error(response, 422, "variables_mismatch", "weights")
    assert "(versions 1 and 3 declare none, version 2 declares {plan}, version 4 " in detail
    assert "declares {customer, plan})" in detail
    assert (
        "sessions created with variables {plan} would fail on versions 1 and 3, which "
        "declare none and on version 4, which declares {customer, plan};"
    ) in detail
    assert len(await releases_of(client, "bot")) == 1


async def test_a_split_of_the_same_variables_is_published_without_warnings(
    client: httpx.AsyncClient,
) -> None:
    await make_chat_model(
        client, "bot", system_prompt="{{plan}} for {{customer}}.", variables=["plan", "customer"]
    )
    # The same names in another order are the same declaration.
    await add_version(
        client, "bot", system_prompt="{{customer}}: {{plan}}", variables=["customer", "plan"]
    )

    split = await post_publish(client, "bot", weights={"1": 50, "2": 50})

    assert (split["kind"], split["versions"], split["warnings"]) == (
        "split",
        {"1": 50, "2": 50},
        [],
    )
    values = {"plan": "pro", "customer": "Ada"}
    versions = set()
    for user in ("u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8"):
        created = await create_session(client, "bot", variables=values, metadata={"user_id": user})
        assert created.status_code == 201, created.text
        versions.add(created.json()["version"])
    assert versions == {1, 2}  # both sides take the same variables


async def test_allow_variable_mismatch_publishes_and_warns(client: httpx.AsyncClient) -> None:
    await plain_then_plan(client)

    split = await post_publish(
        client, "bot", weights={"1": 90, "2": 10}, allow_variable_mismatch=True
    )

    assert split["versions"] == {"1": 90, "2": 10}
    (warning,) = split["warnings"]
    assert warning["code"] == "variables_mismatch"
    assert "sessions created without variables would fail on version 2" in warning["detail"]
    assert "Nothing was published" not in warning["detail"]
    assert (await releases_of(client, "bot"))[0] == split  # the history says so too


async def test_publishing_other_variables_than_the_live_release_warns(
    client: httpx.AsyncClient,
) -> None:
    await plain_then_plan(client)
    before = await create_session(client, "bot")
    assert before.json()["version"] == 1

    release = await post_publish(client, "bot", version=2)

    assert (release["kind"], release["versions"]) == ("publish", {"2": 100})
    assert release["warnings"] == [
        {
            "code": "variables_changed",
            "detail": "New sessions need other template variables than under release 1 "
            "(version 1 declares none): sessions created without variables would fail on "
            "version 2, which declares {plan}. Sessions created already keep their versions.",
        }
    ]
    # The consequence, as the warning says it: old clients break, old sessions do not.
    refused = await create_session(client, "bot")
    assert expect_error(refused, 422, "invalid_input", "variables.plan")
    kept = await client.get(f"/v1/sessions/{before.json()['uuid']}")
    assert kept.json()["version"] == 1
    created = await create_session(client, "bot", variables={"plan": "pro"})
    assert (created.status_code, created.json()["version"]) == (201, 2)


async def test_rolling_back_across_a_variables_change_warns(client: httpx.AsyncClient) -> None:
    await plain_then_plan(client)
    await post_publish(client, "bot", version=2)

    back = await post_rollback(client, "bot")

    assert back["versions"] == {"1": 100}
    assert [w["code"] for w in back["warnings"]] == ["variables_changed"]
    assert (
        "sessions created with variables {plan} would fail on version 1, which declares none"
    ) in back["warnings"][0]["detail"]


async def test_same_variables_publish_and_first_publish_have_no_warnings(
    client: httpx.AsyncClient,
) -> None:
    await make_chat_model(client, "bot", system_prompt=PLAN_PROMPT, variables=["plan"])
    await add_version(client, "bot", system_prompt="Plan: {{plan}}.", variables=["plan"])
    await make_chat_model(
        client, "fresh", system_prompt=PLAN_PROMPT, variables=["plan"], publish=False
    )

    same = await post_publish(client, "bot", version=2)
    first = await post_publish(client, "fresh", version=1)

    assert (same["warnings"], first["warnings"]) == ([], [])
